// Command mtls measures what Lucid's mutual TLS between sidecars costs: the client
// sidecar → server sidecar path with ISTIO_MUTUAL (certificates from Lucid's own CA, as
// `lucid up` gets them), the same pair in plaintext, and HAProxy as two hops with TLS on
// both sides (client certificate, verify required) and in plaintext, in the same run,
// interleaved, on loopback, with the same upstream (nginx answering 1 KiB) and the same
// load (bench/internal/httpload: HTTP/1.1 to the first proxy, a closed loop over -conns
// connections).
//
// For HTTP/1.1 and HTTP/2 between the two proxies it measures keep-alive requests/s and
// new connections/s (one request per connection, a full TLS handshake for each), and
// the CPU the two proxies spent per request: utime+stime from /proc over the
// measurement, not wall time. The proxies run on CPU 1 (one thread, GOMAXPROCS=1 for
// Lucid), the bench (load, upstream, control plane) on the CPU it was started on
// (run.sh: 0). Every figure comes with the 1-minute load average at its end; the tables
// give the median of the rounds.
//
//	bench/mtls/run.sh
//	MTLS_ARGS="-rounds 1 -duration 3s" bench/mtls/run.sh
//	MTLS_ARGS="-profile /tmp/prof -protos http1" bench/mtls/run.sh   # CPU profiles of both sidecars
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/bench/internal/httpload"
)

var (
	lucidBin = flag.String("lucid", "bin/lucid", "the lucid binary")
	rounds   = flag.Int("rounds", 3, "interleaved rounds (the tables give medians)")
	duration = flag.Duration("duration", 10*time.Second, "each measurement")
	warmup   = flag.Duration("warmup", 2*time.Second, "load before each measurement")
	conns    = flag.Int("conns", 16, "concurrent connections of the load")
	targets  = flag.String("targets", "lucid-mtls,lucid-plain,lucid-mtls-x25519,haproxy-tls,haproxy-plain", "pairs to measure; lucid-mtls-x25519 is lucid-mtls with Go's post-quantum key share off (GODEBUG=tlsmlkem=0): X25519 only, as HAProxy here")
	protos   = flag.String("protos", "http1,h2", "protocols between the two proxies")
	modes    = flag.String("modes", "keepalive,newconn", "keepalive: connections kept; newconn: a new connection per request")
	netFlag  = flag.String("net", "127.0.242", "the /24 on loopback every address is in")
	results  = flag.String("results", "", "write the Markdown tables here too")
	profile  = flag.String("profile", "", "instead of measuring: write CPU profiles of both sidecars (lucid-mtls, lucid-plain; -protos, -modes) to this directory")
	hold     = flag.Duration("hold", 0, "instead of measuring: start the first target for the first protocol and mode, print where it listens, and keep it this long")
)

// sample is one measurement.
type sample struct {
	round                int
	proto, mode, target  string
	rate                 float64 // requests (= connections with newconn) per second
	pairUS, cliUS, srvUS float64 // CPU µs per request
	srvConnsPerReq       float64 // connections the second proxy accepted per request
	errs                 int64
	load                 string
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() (err error) {
	work, err := os.MkdirTemp("", "lucid-mtlsbench")
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			_ = os.RemoveAll(work)
		}
	}()
	e := &env{net: *netFlag, lucid: *lucidBin, work: work, state: filepath.Join(work, "state"), profile: *profile}
	if err := os.Mkdir(e.state, 0o700); err != nil {
		return err
	}
	up := &pair{env: e}
	defer up.stop()
	if err := e.startUpstream(up); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	// The mesh CA's first start creates its root; HAProxy's certificates come from it.
	first, err := e.startLucid(variant{}, true, nil)
	if err != nil {
		return fmt.Errorf("lucid with mutual TLS: %w", err)
	}
	first.stop()
	if err := e.haproxyCerts(); err != nil {
		return err
	}
	if *profile != "" {
		return profileSidecars(e)
	}
	if *hold > 0 {
		p, err := startPair(e, split(*targets)[0], variant{h2: split(*protos)[0] == "h2", newConn: split(*modes)[0] == "newconn"})
		if err != nil {
			return err
		}
		defer p.stop()
		fmt.Printf("%s listens on %s (request head %q); work directory %s\n", split(*targets)[0], p.addr, p.head, work)
		time.Sleep(*hold)
		return nil
	}

	var all []sample
	for r := 1; r <= *rounds; r++ {
		for _, proto := range split(*protos) {
			for _, mode := range split(*modes) {
				for _, t := range split(*targets) { // interleaved: A, B, C, D, then again
					s, err := measure(e, t, variant{h2: proto == "h2", newConn: mode == "newconn"})
					if err != nil {
						return fmt.Errorf("round %d, %s %s %s: %w", r, proto, mode, t, err)
					}
					s.round, s.proto, s.mode, s.target = r, proto, mode, t
					fmt.Fprintf(os.Stderr, "mtls: round %d %s %s %-14s %8.0f/s  pair %6.1f µs (client %5.1f, server %5.1f)  server conns/req %.2f  errors %d  load %s\n",
						r, proto, mode, t, s.rate, s.pairUS, s.cliUS, s.srvUS, s.srvConnsPerReq, s.errs, s.load)
					all = append(all, s)
				}
			}
		}
	}
	out := report(all)
	fmt.Print(out)
	if *results != "" {
		return os.WriteFile(*results, []byte(out), 0o644)
	}
	return nil
}

// startPair starts target's two proxies for v.
func startPair(e *env, target string, v variant) (*pair, error) {
	switch target {
	case "lucid-mtls":
		return e.startLucid(v, true, nil)
	case "lucid-mtls-x25519":
		return e.startLucid(v, true, []string{"GODEBUG=tlsmlkem=0"})
	case "lucid-plain":
		return e.startLucid(v, false, nil)
	case "haproxy-tls":
		return e.startHAProxy(v, true)
	case "haproxy-plain":
		return e.startHAProxy(v, false)
	}
	return nil, fmt.Errorf("unknown target %q", target)
}

// measure starts the pair, warms it up, and measures one bounded load.
func measure(e *env, target string, v variant) (sample, error) {
	p, err := startPair(e, target, v)
	if err != nil {
		return sample{}, err
	}
	defer p.stop()
	load := httpload.Options{Addr: p.addr, Head: p.head, Conns: *conns, Duration: *warmup, NewConn: v.newConn, BodySize: bodySize}
	httpload.Run(load)
	c0, s0 := cpuTime(p.client), cpuTime(p.server)
	n0, err := p.serverConns()
	if err != nil {
		return sample{}, err
	}
	load.Duration = *duration
	res := httpload.Run(load)
	c1, s1 := cpuTime(p.client), cpuTime(p.server)
	n1, err := p.serverConns()
	if err != nil {
		return sample{}, err
	}
	if res.OK == 0 {
		return sample{}, fmt.Errorf("no request answered (%d errors, first: %s; logs in %s)", res.Failed, res.FirstErr, e.work)
	}
	if res.Failed > 0 {
		fmt.Fprintf(os.Stderr, "mtls: %s: %d errors, first: %s\n", target, res.Failed, res.FirstErr)
	}
	n := float64(res.OK)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	return sample{
		rate:  n / duration.Seconds(),
		cliUS: us(c1 - c0), srvUS: us(s1 - s0), pairUS: us(c1 - c0 + s1 - s0),
		srvConnsPerReq: float64(n1-n0) / n,
		errs:           res.Failed,
		load:           loadAverage(),
	}, nil
}

// profileSidecars writes 10 s CPU profiles of both Lucid sidecars under load, with and
// without mutual TLS, for each protocol and mode.
func profileSidecars(e *env) error {
	if err := os.MkdirAll(e.profile, 0o755); err != nil { //nolint:gosec // profiles to read
		return err
	}
	for _, proto := range split(*protos) {
		for _, mode := range split(*modes) {
			for _, mtls := range []bool{true, false} {
				v := variant{h2: proto == "h2", newConn: mode == "newconn"}
				name := map[bool]string{true: "lucid-mtls", false: "lucid-plain"}[mtls] + "-" + proto + "-" + mode
				p, err := e.startLucid(v, mtls, nil)
				if err != nil {
					return err
				}
				load := httpload.Options{Addr: p.addr, Head: p.head, Conns: *conns, Duration: *warmup, NewConn: v.newConn, BodySize: bodySize}
				httpload.Run(load)
				load.Duration = 12 * time.Second
				done := make(chan httpload.Result)
				go func() { done <- httpload.Run(load) }()
				var wg sync.WaitGroup
				var errs []error
				var mu sync.Mutex
				for side, host := range map[string]byte{"client": clientSidecarHost, "server": webSidecarHost} {
					wg.Go(func() {
						f := filepath.Join(e.profile, name+"-"+side+".pprof")
						if err := fetch("http://"+e.addr(host, 15020)+"/debug/pprof/profile?seconds=10", f); err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				res := <-done
				p.stop()
				if err := errors.Join(errs...); err != nil {
					return err
				}
				fmt.Printf("%s: %d requests in 12 s (load average %s); profiles in %s\n", name, res.OK, loadAverage(), e.profile)
			}
		}
	}
	return nil
}

func fetch(url, file string) error {
	resp, err := http.Get(url) //nolint:gosec,noctx // the bench's own sidecar
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func split(s string) []string {
	return slices.DeleteFunc(strings.Split(s, ","), func(x string) bool { return x == "" })
}

// versions says what was measured with what.
func versions() string {
	var b strings.Builder
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		b.WriteString("HAProxy: " + strings.SplitN(string(out), "\n", 2)[0] + "\n")
	}
	if out, err := exec.Command("nginx", "-v").CombinedOutput(); err == nil {
		b.WriteString("upstream: " + strings.TrimSpace(string(out)) + "\n")
	}
	return b.String()
}
