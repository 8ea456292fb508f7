// Command capture measures what transparent capture costs: one sidecar hop taken by a
// captured connection (the app calls http://upstream:8080/, the pod's rules redirect it to
// the sidecar's 15001), the same hop as an explicit proxy (the app is told to use
// http://127.0.0.1:15001, CONNECT for TCP) and no hop (uid 1337, which the rules never
// capture), in the same run, from the same pod, to the same upstream, over HTTP/1.1 and TCP.
//
// It runs `lucid up --capture` on a two-object mesh (a client workload; an upstream
// ServiceEntry whose endpoint is this process on the bridge's address) and the client (this
// binary with -client) inside the client's pod through `lucid exec`. Latency is measured
// one request (or one 1 KiB echo) at a time; the sidecar's CPU per request is its
// utime+stime over the measurement, from /proc. It needs root and its own network and
// mount namespaces (run.sh: `unshare -n -m`).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	lucidBin = flag.String("lucid", "bin/lucid", "the lucid binary")
	duration = flag.Duration("duration", 10*time.Second, "each measurement")
	rounds   = flag.Int("rounds", 3, "rounds of all measurements (the median round is reported)")
	results  = flag.String("results", "", "write the Markdown table here too")

	clientMode = flag.String("client", "", "internal: run the client: http or tcp")
	target     = flag.String("target", "", "internal: URL (http) or host:port (tcp)")
	proxyURL   = flag.String("proxy", "", "internal: explicit proxy URL")
)

const (
	bridge   = "10.213.0.1" // lucid up --capture's default range: the bridge, where this process serves
	httpPort = "8080"
	tcpPort  = "9000"
	payload  = 1024
)

const meshYAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: upstream, namespace: default}
spec:
  hosts: [upstream.default.svc.cluster.local]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - {number: 8080, name: http, protocol: HTTP}
  - {number: 9000, name: tcp, protocol: TCP}
  endpoints: [{address: ` + bridge + `}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 127.0.77.1, labels: {app: client}}
`

// stats is one measurement.
type stats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_us"`
	P90 float64 `json:"p90_us"`
	P99 float64 `json:"p99_us"`
}

func main() {
	flag.Parse()
	if *clientMode != "" {
		if err := client(); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// run is the bench's parent: the upstream, the mesh, the measurements, the table.
func run() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root in its own network namespace: run bench/capture/run.sh")
	}
	startUpstream()
	dir, err := os.MkdirTemp("", "capbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { //nolint:gosec // G302: the pod's uids enter it
		return err
	}
	cfg := filepath.Join(dir, "mesh")
	if err := os.Mkdir(cfg, 0o755); err != nil { //nolint:gosec // G301: as above
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg, "mesh.yaml"), []byte(meshYAML), 0o644); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.Setenv("LUCID_RUN_DIR", filepath.Join(dir, "run")); err != nil { // lucid up and lucid exec
		return err
	}
	up := exec.Command(*lucidBin, "up", "--capture", cfg, "--log-level", "warning")
	upLog, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return err
	}
	up.Stdout, up.Stderr = upLog, upLog
	up.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := up.Start(); err != nil {
		return err
	}
	defer func() {
		_ = up.Process.Signal(os.Interrupt)
		_ = up.Wait()
	}()
	if err := waitFor(filepath.Join(dir, "up.log"), "press Ctrl-C", 60*time.Second); err != nil {
		return err
	}
	sidecar, err := findSidecar()
	if err != nil {
		return err
	}

	type row struct{ proto, mode string }
	rows := []row{{"http1", "direct"}, {"http1", "explicit"}, {"http1", "captured"}, {"tcp", "direct"}, {"tcp", "explicit"}, {"tcp", "captured"}}
	got := map[row][]stats{}
	cpu := map[row][]float64{}
	for r := range *rounds {
		for _, rw := range rows {
			before := cpuTime(sidecar)
			st, err := measure(self, rw.proto, rw.mode)
			if err != nil {
				return fmt.Errorf("round %d, %s %s: %w", r+1, rw.proto, rw.mode, err)
			}
			used := cpuTime(sidecar) - before
			got[rw] = append(got[rw], st)
			cpu[rw] = append(cpu[rw], float64(used.Microseconds())/float64(max(st.N, 1)))
		}
	}

	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "One sidecar hop, captured vs explicit proxy vs direct, same run (%d rounds of %s each, one request at a time, the median round's figures). Load average at the end: %s\n\n",
		*rounds, *duration, strings.Join(strings.Fields(string(load))[:3], " "))
	b.WriteString("| protocol | path | p50 µs | p90 µs | p99 µs | added p50 µs | sidecar CPU µs/request |\n|---|---|---|---|---|---|---|\n")
	summary := map[row][2]float64{}
	for _, rw := range rows {
		st := median(got[rw])
		direct := median(got[row{rw.proto, "direct"}])
		added := st.P50 - direct.P50
		c := medianF(cpu[rw])
		summary[rw] = [2]float64{added, c}
		addedS, cpuS := fmt.Sprintf("%.0f", added), fmt.Sprintf("%.1f", c)
		if rw.mode == "direct" {
			addedS, cpuS = "—", "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f | %.0f | %s | %s |\n", rw.proto, rw.mode, st.P50, st.P90, st.P99, addedS, cpuS)
	}
	b.WriteString("\n")
	for _, proto := range []string{"http1", "tcp"} {
		e, c := summary[row{proto, "explicit"}], summary[row{proto, "captured"}]
		fmt.Fprintf(&b, "- %s: capture adds %+.1f %% to the added p50 and %+.1f %% to the CPU per request of the explicit-proxy hop (bound: +10 %%)\n",
			proto, pct(c[0], e[0]), pct(c[1], e[1]))
	}
	fmt.Print(b.String())
	if *results != "" {
		return os.WriteFile(*results, []byte(b.String()), 0o644)
	}
	return nil
}

// measure runs one client in the client pod and returns what it measured.
func measure(self, proto, mode string) (stats, error) {
	uid := "65534"
	args := []string{"-client", strings.TrimSuffix(proto, "1"), "-duration", duration.String()}
	switch proto + "/" + mode {
	case "http1/direct":
		uid, args = "1337", append(args, "-target", "http://"+bridge+":"+httpPort+"/")
	case "http1/explicit":
		args = append(args, "-target", "http://upstream:"+httpPort+"/", "-proxy", "http://127.0.0.1:15001")
	case "http1/captured":
		args = append(args, "-target", "http://upstream:"+httpPort+"/")
	case "tcp/direct":
		uid, args = "1337", append(args, "-target", bridge+":"+tcpPort)
	case "tcp/explicit":
		args = append(args, "-target", "upstream:"+tcpPort, "-proxy", "http://127.0.0.1:15001")
	case "tcp/captured":
		args = append(args, "-target", "upstream:"+tcpPort)
	}
	cmd := exec.Command(*lucidBin, append([]string{"exec", "--uid", uid, "client", "--", self}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return stats{}, fmt.Errorf("%w: %s%s", err, out, ee.Stderr)
		}
		return stats{}, err
	}
	var st stats
	if err := json.Unmarshal(out, &st); err != nil {
		return stats{}, fmt.Errorf("client said %q: %w", out, err)
	}
	return st, nil
}

// client is the pod's side: one request (or echo) at a time for -duration.
func client() error {
	var lat []time.Duration
	deadline := time.Now().Add(*duration)
	switch *clientMode {
	case "http":
		tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, Proxy: nil}
		if *proxyURL != "" {
			u, err := url.Parse(*proxyURL)
			if err != nil {
				return err
			}
			tr.Proxy = http.ProxyURL(u)
		}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for time.Now().Before(deadline) {
			start := time.Now()
			resp, err := c.Get(*target)
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || n != payload {
				return fmt.Errorf("GET %s: %d, %d bytes: %w", *target, resp.StatusCode, n, err)
			}
			lat = append(lat, time.Since(start))
		}
	case "tcp":
		conn, err := dialTCP()
		if err != nil {
			return err
		}
		defer conn.Close()
		buf, back := make([]byte, payload), make([]byte, payload)
		for time.Now().Before(deadline) {
			start := time.Now()
			if _, err := conn.Write(buf); err != nil {
				return err
			}
			if _, err := io.ReadFull(conn, back); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
		}
	default:
		return fmt.Errorf("-client %q: want http or tcp", *clientMode)
	}
	if len(lat) < 10 {
		return fmt.Errorf("only %d requests in %s", len(lat), *duration)
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	return json.NewEncoder(os.Stdout).Encode(stats{N: len(lat), P50: q(0.5), P90: q(0.9), P99: q(0.99)})
}

// dialTCP connects to -target, through -proxy with CONNECT when set.
func dialTCP() (net.Conn, error) {
	if *proxyURL == "" {
		return net.DialTimeout("tcp", *target, 5*time.Second)
	}
	u, err := url.Parse(*proxyURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", *target, *target)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("CONNECT %s via %s: %w", *target, u.Host, err)
	}
	_ = resp.Body.Close() // a 200 to CONNECT has no body; the tunnel follows
	if resp.StatusCode != 200 {
		_ = conn.Close()
		return nil, fmt.Errorf("CONNECT %s via %s: %s", *target, u.Host, resp.Status)
	}
	if br.Buffered() > 0 {
		_ = conn.Close()
		return nil, errors.New("bytes after the CONNECT response")
	}
	return conn, nil
}

// startUpstream serves 1 KiB per HTTP request and echoes TCP, on every address.
func startUpstream() {
	body := strings.Repeat("x", payload)
	go func() {
		srv := &http.Server{Addr: ":" + httpPort, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, body)
		})}
		log.Fatal(srv.ListenAndServe())
	}()
	ln, err := net.Listen("tcp", ":"+tcpPort)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// findSidecar is the pid of the client's sidecar.
func findSidecar() (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmd), "\x00")
		if len(args) > 1 && args[1] == "sidecar" && slices.Contains(args, "client") {
			return pid, nil
		}
	}
	return 0, errors.New("the client's sidecar is not running")
}

// cpuTime is a process's utime+stime.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func waitFor(file, text string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), text) {
			return nil
		}
		if strings.Contains(string(b), "lucid: ") {
			return fmt.Errorf("lucid up --capture failed:\n%s", b)
		}
	}
	b, _ := os.ReadFile(file)
	return fmt.Errorf("lucid up --capture not ready after %s:\n%s", timeout, b)
}

// median is the round whose p50 is the median.
func median(s []stats) stats {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b stats) int { return int(a.P50 - b.P50) })
	return s[len(s)/2]
}

func medianF(s []float64) float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	return s[len(s)/2]
}

func pct(v, base float64) float64 {
	if base == 0 {
		return 0
	}
	return (v/base - 1) * 100
}
