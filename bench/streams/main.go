// Command streams is the soak of scenario 4 of docs/scenarios.md with production timers: a watch
// client streams Kubernetes-style watch events through a proxy from API server A; A's
// packets are then dropped (iptables, no FIN, no RST) and the bench measures how long the
// watch hangs, how long the client needs to reach API server B again, and whether a quiet
// stream to B through the same proxy survives. It runs the scenario through Lucid's sidecar
// (default timers), HAProxy and nginx (their Debian default configurations) side by side.
//
// It needs root and must run in its own network namespace (run.sh does `unshare -n`), so
// the DROP rules touch nothing else. Addresses: 127.0.93.100-139.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

var (
	hangCap  = flag.Duration("cap", 5*time.Minute, "longest wait for a hung watch to end")
	quietFor = flag.Duration("quiet", 10*time.Minute, "how long the quiet stream stays quiet")
	only     = flag.String("only", "lucid,haproxy,nginx,haproxy-1h,nginx-1h", "proxies to run")
)

type result struct {
	name, detail           string
	hang, rewatch, quietOK string
}

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime)
	tmp, err := os.MkdirTemp("", "streams-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	runs := map[string]func() (func(), string, string){ // start proxy → stop, proxy addr, detail
		"lucid": func() (func(), string, string) {
			return startLucid("127.0.93.100", "127.0.93.111:8080", "127.0.93.112:8080")
		},
		"haproxy": func() (func(), string, string) {
			return startHAProxy(tmp, "127.0.93.101:8443", "127.0.93.121:8080", "127.0.93.122:8080", "")
		},
		"nginx": func() (func(), string, string) {
			return startNginx(tmp, "127.0.93.102:8443", "127.0.93.131:8080", "127.0.93.132:8080", "")
		},
		// Tuned the way long-lived watches are usually configured: timeouts of an hour, so
		// quiet streams survive (and dead ones hang).
		"haproxy-1h": func() (func(), string, string) {
			return startHAProxy(tmp, "127.0.93.103:8443", "127.0.93.141:8080", "127.0.93.142:8080", "1h")
		},
		"nginx-1h": func() (func(), string, string) {
			return startNginx(tmp, "127.0.93.104:8443", "127.0.93.151:8080", "127.0.93.152:8080", "proxy_read_timeout 1h; proxy_send_timeout 1h;")
		},
	}
	backends := map[string][2]string{
		"lucid": {"127.0.93.111:8080", "127.0.93.112:8080"}, "haproxy": {"127.0.93.121:8080", "127.0.93.122:8080"},
		"nginx": {"127.0.93.131:8080", "127.0.93.132:8080"}, "haproxy-1h": {"127.0.93.141:8080", "127.0.93.142:8080"},
		"nginx-1h": {"127.0.93.151:8080", "127.0.93.152:8080"},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var results []result
	for _, name := range strings.Split(*only, ",") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := scenario(name, backends[name][0], backends[name][1], runs[name])
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("\n| proxy | configuration | watch on blackholed A ends after | re-watch reaches B after | quiet stream to B after %s |\n|---|---|---|---|---|\n", *quietFor)
	for _, r := range results {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.name, r.detail, r.hang, r.rewatch, r.quietOK)
	}
}

func scenario(name, aAddr, bAddr string, start func() (func(), string, string)) result {
	a := startAPIServer(aAddr, "A")
	b := startAPIServer(bAddr, "B")
	defer a.Close()
	defer b.Close()
	stop, addr, detail := start()
	defer stop()
	r := result{name: name, detail: detail}
	h2 := !strings.HasPrefix(name, "nginx")
	client := newClient(h2)
	base := "http://" + addr

	// The watch must start on A and the quiet stream on B (retry until the balancer agrees).
	var w *stream
	for i := 0; i < 10 && w == nil; i++ {
		s, err := open(client, base+"/watch?watch=true")
		if err != nil {
			log.Printf("%s: watch: %v", name, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if s.first.Object.Server == "A" {
			w = s
		} else {
			s.close()
		}
	}
	var q *stream
	for i := 0; i < 10 && q == nil; i++ {
		s, err := open(client, base+"/quiet?watch=true")
		if err != nil {
			log.Printf("%s: quiet: %v", name, err)
			continue
		}
		if s.first.Object.Server == "B" {
			q = s
		} else {
			s.close()
		}
	}
	if w == nil || q == nil {
		r.hang = "setup failed"
		return r
	}
	defer q.close()
	quietStart := time.Now()
	if err := iptablesDrop(strings.Split(aAddr, ":")[0]); err != nil {
		q.close()
		log.Fatalf("%s: %v", name, err) //nolint:gocritic // exitAfterDefer: q is closed on the line above
	}
	cut := time.Now()
	log.Printf("%s: A blackholed", name)
	select {
	case err := <-w.end:
		r.hang = fmt.Sprintf("%.1f s", time.Since(cut).Seconds())
		log.Printf("%s: watch ended after %s: %v", name, r.hang, err)
	case <-time.After(*hangCap):
		r.hang = fmt.Sprintf("> %s (still open)", *hangCap)
		log.Printf("%s: watch still open after %s", name, *hangCap)
	}
	w.close()
	reStart := time.Now()
	r.rewatch = fmt.Sprintf("> %s", *hangCap)
	for time.Since(reStart) < *hangCap {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		s, err := openCtx(ctx, client, base+"/watch?watch=true")
		if err == nil {
			s.close()
		}
		cancel()
		if err == nil && s.first.Object.Server == "B" {
			r.rewatch = fmt.Sprintf("%.1f s", time.Since(reStart).Seconds())
			break
		}
		log.Printf("%s: re-watch: %v", name, errOr(err, "reached A"))
	}
	// The quiet stream: alive after quietFor? Poke B, expect the event.
	select {
	case err := <-q.end:
		r.quietOK = fmt.Sprintf("cut after %.0f s of silence (%v)", (<-q.ended).Sub(quietStart).Seconds(), firstLine(err))
		return r
	case <-time.After(time.Until(quietStart.Add(*quietFor))):
	}
	b.poke <- struct{}{}
	select {
	case <-q.ev:
		r.quietOK = "alive (event delivered)"
	case err := <-q.end:
		r.quietOK = fmt.Sprintf("cut (%v)", err)
	case <-time.After(10 * time.Second):
		r.quietOK = "no event"
	}
	return r
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func iptablesDrop(ip string) error {
	for _, args := range [][]string{{"-I", "INPUT", "-d", ip, "-j", "DROP"}, {"-I", "INPUT", "-s", ip, "-j", "DROP"}} {
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %v: %w: %s", args, err, out)
		}
	}
	return nil
}

// --- API servers and clients ---

type event struct {
	Type   string `json:"type"`
	Object struct {
		Server string `json:"server"`
		N      int    `json:"n"`
	} `json:"object"`
}

type apiServer struct {
	*http.Server
	poke chan struct{}
}

func startAPIServer(addr, name string) *apiServer {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	a := &apiServer{poke: make(chan struct{}, 1)}
	send := func(w http.ResponseWriter, n int) error {
		var ev event
		ev.Type, ev.Object.Server, ev.Object.N = "ADDED", name, n
		b, _ := json.Marshal(ev)
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		return http.NewResponseController(w).Flush()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/watch", func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for n := 0; send(w, n) == nil; n++ {
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/quiet", func(w http.ResponseWriter, r *http.Request) {
		for n := 0; send(w, n) == nil; n++ {
			select {
			case <-a.poke:
			case <-r.Context().Done():
				return
			}
		}
	})
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	a.Server = &http.Server{Handler: mux, Protocols: &protos, ReadHeaderTimeout: time.Minute}
	go func() { _ = a.Serve(ln) }()
	return a
}

// newClient: HTTP/2 prior knowledge with its own pings off (Go's default), or HTTP/1.1.
func newClient(h2 bool) *http.Client {
	var protos http.Protocols
	if h2 {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	return &http.Client{Transport: &http.Transport{Protocols: &protos}}
}

type stream struct {
	first  event
	ev     chan event
	end    chan error
	cancel context.CancelFunc
	body   io.Closer
	ended  chan time.Time // when the stream ended (written before end)
}

func open(c *http.Client, url string) (*stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return openCtx(ctx, c, url)
}

func openCtx(setup context.Context, c *http.Client, url string) (*stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	type res struct {
		resp *http.Response
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		resp, err := c.Do(req) //nolint:bodyclose // closed by stream.close
		ch <- res{resp, err}
	}()
	var rr res
	select {
	case rr = <-ch:
	case <-setup.Done():
		cancel()
		return nil, fmt.Errorf("no response headers: %w", setup.Err())
	}
	if rr.err != nil {
		cancel()
		return nil, rr.err
	}
	if rr.resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(rr.resp.Body)
		rr.resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("status %d: %.100s", rr.resp.StatusCode, b)
	}
	s := &stream{ev: make(chan event, 4096), end: make(chan error, 1), cancel: cancel, body: rr.resp.Body, ended: make(chan time.Time, 1)}
	sc := bufio.NewScanner(rr.resp.Body)
	first := make(chan error, 1)
	go func() {
		n := 0
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			if n == 0 {
				s.first = e
				first <- nil
			} else {
				select {
				case s.ev <- e:
				default:
				}
			}
			n++
		}
		err := errors.Join(sc.Err(), io.EOF)
		if n == 0 {
			first <- err
		}
		s.ended <- time.Now()
		s.end <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			cancel()
			return nil, err
		}
	case <-setup.Done():
		cancel()
		rr.resp.Body.Close()
		return nil, fmt.Errorf("no first event: %w", setup.Err())
	}
	return s, nil
}

func (s *stream) close() {
	s.cancel()
	_ = s.body.Close()
}

// --- the proxies ---

func startLucid(ip, a, b string) (func(), string, string) {
	cm := cluster.NewManager(nil)
	ps := pool.NewSet(nil)
	fw := forward.New(forward.Options{Clusters: cm, Pools: ps})
	p := proxy.New(proxy.Options{IP: netip.MustParseAddr(ip), Forwarder: fw, Clusters: cm, Pools: ps})
	addr := ip + ":8443"
	mk := func(name string, addrs ...string) *resource.Cluster {
		c := &resource.Cluster{Name: name, Type: resource.Static, ConnectTimeout: 10 * time.Second, Protocol: resource.HTTP2,
			LBPolicy: resource.RoundRobin, LoadAssignment: &resource.Endpoints{ClusterName: name}}
		for _, s := range addrs {
			ap := netip.MustParseAddrPort(s)
			c.LoadAssignment.Endpoints = append(c.LoadAssignment.Endpoints, resource.Endpoint{Address: ap, Port: uint32(ap.Port()), Weight: 1})
		}
		return c
	}
	// Istio's default outbound retry policy.
	retry := &resource.RetryPolicy{RetryOn: []string{"connect-failure", "refused-stream", "unavailable", "cancelled"}, NumRetries: 2, AvoidPreviousHosts: true}
	apply := func(eps ...string) {
		rc := &resource.RouteConfig{Name: "r", VirtualHosts: []resource.VirtualHost{{Name: "api", Domains: []string{"*"}, Routes: []resource.Route{
			{Name: "quiet", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/quiet", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: "b", RetryPolicy: retry}},
			{Name: "default", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: "api", RetryPolicy: retry}},
		}}}}
		snap := &resource.Snapshot{
			Listeners: map[string]*resource.Listener{"api": {Name: "api", Address: netip.MustParseAddrPort(addr), BindToPort: true, Direction: resource.Outbound,
				FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{Routes: rc}}}}},
			Routes: map[string]*resource.RouteConfig{}, Endpoints: map[string]*resource.Endpoints{},
			Clusters: map[string]*resource.Cluster{"api": mk("api", eps...), "b": mk("b", b)},
		}
		if err := p.Apply(snap); err != nil {
			log.Fatal(err)
		}
	}
	apply(a)
	go func() { time.Sleep(3 * time.Second); apply(a, b) }() // after the first watch landed on A
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		ps.Close()
	}
	return stop, addr, "defaults (TCP keepalive 10s/5s/3 + user timeout 25s, HTTP/2 PING 10s/10s, drain grace 30s)"
}

// startHAProxy runs HAProxy with Debian's default timeouts, or client/server timeouts of
// tmo.
func startHAProxy(dir, addr, a, b, tmo string) (func(), string, string) {
	detail := "Debian default timeouts (connect 5s, client 50s, server 50s), h2 both sides"
	cs := "50000"
	if tmo != "" {
		cs, detail = tmo, "timeout client/server "+tmo+", h2 both sides"
	}
	cfg := fmt.Sprintf(`global
  maxconn 1000
defaults
  mode http
  timeout connect 5000
  timeout client  %[4]s
  timeout server  %[4]s
frontend f
  bind %[1]s proto h2
  default_backend api
backend api
  balance roundrobin
  server a %[2]s proto h2
  server b %[3]s proto h2
`, addr, a, b, cs)
	return startProcess(dir, "haproxy-"+addr+".cfg", cfg, "haproxy", "-db", "-f"), addr, detail
}

// startNginx runs nginx with its defaults plus proxy_buffering off (with the default,
// buffering on, no watch event reaches the client before the stream ends) and extra.
func startNginx(dir, addr, a, b, extra string) (func(), string, string) {
	detail := "defaults (proxy_read_timeout 60s, proxy_http_version 1.0) + proxy_buffering off, HTTP/1.1 client"
	if extra != "" {
		detail = "proxy_buffering off; " + extra + " HTTP/1.1 client"
	}
	cfg := fmt.Sprintf(`daemon off;
pid %[1]s/nginx-%[4]s.pid;
error_log stderr warn;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s;
  upstream api { server %[2]s; server %[3]s; }
  server {
    listen %[4]s;
    location / { proxy_pass http://api; proxy_buffering off; %[5]s }
  }
}
`, dir, a, b, addr, extra)
	return startProcess(dir, "nginx-"+addr+".conf", cfg, "nginx", "-c"), addr, detail
}

func startProcess(dir, file, cfg, bin string, args ...string) func() {
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command(bin, append(args, path)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	return func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
}
