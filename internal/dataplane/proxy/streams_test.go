package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockopt"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Watches that must not hang (docs/scenarios.md, scenario 4): a watch client (HTTP/2, its own
// pings off) → sidecar → two upstream "API servers" streaming watch events. Upstream A
// becomes unreachable without any connection being closed. The watch must end within the
// bound, the re-watch must reach B, and a quiet stream to B on the same client connection
// must not be touched.

// apiServer is an h2c server streaming Kubernetes-style watch events.
type apiServer struct {
	name string
	srv  *http.Server
	poke chan struct{} // each receive makes /quiet streams send one event
}

type watchEvent struct {
	Type   string `json:"type"`
	Object struct {
		Server string `json:"server"`
		N      int    `json:"n"`
	} `json:"object"`
}

func startAPIServer(t *testing.T, addr, name string) *apiServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a := &apiServer{name: name, poke: make(chan struct{}, 16)}
	send := func(w http.ResponseWriter, n int) error {
		var ev watchEvent
		ev.Type, ev.Object.Server, ev.Object.N = "ADDED", name, n
		b, _ := json.Marshal(ev)
		if _, err := w.Write(append(b, '\n')); err != nil {
			return err
		}
		return http.NewResponseController(w).Flush()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/watch", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			if send(w, n) != nil {
				return
			}
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/quiet", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for n := 0; ; n++ {
			if send(w, n) != nil {
				return
			}
			select {
			case <-a.poke:
			case <-r.Context().Done():
				return
			}
		}
	})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	a.srv = &http.Server{Handler: mux, Protocols: &protos}
	go func() { _ = a.srv.Serve(ln) }()
	t.Cleanup(func() { _ = a.srv.Close() })
	return a
}

// relay forwards TCP to target until stop, after which it silently stops forwarding:
// existing connections stay open and their bytes are acknowledged by the kernel but go
// nowhere (a hung peer behind a middlebox); new connections are refused.
type relay struct {
	ln      net.Listener
	target  string
	stopped atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startRelay(t *testing.T, addr, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, done: make(chan struct{})}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, u)
			r.mu.Unlock()
			r.wg.Add(2)
			go r.copy(u, c)
			go r.copy(c, u)
		}
	}()
	t.Cleanup(func() {
		r.stop()
		close(r.done)
		r.mu.Lock()
		for _, c := range r.conns {
			_ = c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *relay) copy(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if r.stopped.Load() {
			<-r.done // hold the connection open, forward nothing
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *relay) stop() {
	r.stopped.Store(true)
	_ = r.ln.Close()
}

// streamClient is the watch client: HTTP/2 prior knowledge, no pings of its own.
func streamClient() (*http.Client, *http.Transport) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	return &http.Client{Transport: tr}, tr
}

// watch is one streaming request; events arrive on ev, the end (with its error) on end.
type watch struct {
	resp   *http.Response
	ev     chan watchEvent
	end    chan error
	done   chan struct{} // closed after end was sent
	cancel context.CancelFunc
}

func startWatch(t *testing.T, c *http.Client, url string) (*watch, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req) //nolint:bodyclose // closed by watch.close
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("status %d: %s (%s)", resp.StatusCode, b, resp.Header.Get("X-Lucid-Error"))
	}
	w := &watch{resp: resp, ev: make(chan watchEvent, 1024), end: make(chan error, 1), done: make(chan struct{}), cancel: cancel}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var e watchEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				select {
				case w.ev <- e:
				default:
				}
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		w.end <- err
		close(w.done)
	}()
	return w, nil
}

func (w *watch) close() {
	w.cancel()
	w.resp.Body.Close()
	<-w.done
}

// nextEvent waits for an event within d.
func (w *watch) nextEvent(t *testing.T, d time.Duration) watchEvent {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case e := <-w.ev:
		return e
	case err := <-w.end:
		t.Fatalf("stream ended instead of sending an event: %v", err)
	case <-tm.C:
		t.Fatalf("no event within %s", d)
	}
	return watchEvent{}
}

// infoLog collects the proxy's finished requests.
type infoLog struct {
	mu    sync.Mutex
	infos []streaminfo.Info
}

func (l *infoLog) observe(i *streaminfo.Info) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos = append(l.infos, *i)
}

func (l *infoLog) find(pred func(*streaminfo.Info) bool) *streaminfo.Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.infos {
		if pred(&l.infos[i]) {
			c := l.infos[i]
			return &c
		}
	}
	return nil
}

// streamTimers are the shortened timers the tests run with.
var streamTimers = struct {
	ping, pingTimeout time.Duration
	tcp               sockopt.Keepalive
}{300 * time.Millisecond, 300 * time.Millisecond, sockopt.Keepalive{Idle: time.Second, Interval: time.Second, Probes: 1}}

type streamProxy struct {
	p    *Proxy
	cm   *cluster.Manager
	log  *infoLog
	addr string
}

func newStreamProxy(t *testing.T, ip string, grace time.Duration) *streamProxy {
	t.Helper()
	cm := cluster.NewManager(nil)
	cm.SetDrainOptions(cluster.DrainOptions{HTTPGrace: grace, TCPGrace: grace})
	ps := pool.NewSet(nil)
	lg := &infoLog{}
	fw := forward.New(forward.Options{Clusters: cm, Pools: ps, Observers: []func(*streaminfo.Info){lg.observe}, ConnectionObservers: []func(*streaminfo.Info){lg.observe}})
	p := New(Options{IP: netip.MustParseAddr(ip), Forwarder: fw, Clusters: cm, Pools: ps, DrainTimeout: time.Second,
		DownstreamKeepalive: streamTimers.tcp, H2PingInterval: streamTimers.ping, H2PingTimeout: streamTimers.pingTimeout})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		fw.Close()
		ps.Close()
	})
	return &streamProxy{p: p, cm: cm, log: lg, addr: ip + ":8443"}
}

// apply installs: listener ip:8443 → /quiet to cluster b-only, everything else to
// apiserver (h2c, endpoints eps), with Istio's default retry policy.
func (sp *streamProxy) apply(t *testing.T, eps []string, bOnly string) {
	t.Helper()
	ka := &resource.TCPKeepalive{Time: streamTimers.tcp.Idle, Interval: streamTimers.tcp.Interval, Probes: uint32(streamTimers.tcp.Probes)}
	h2 := &resource.HTTP2Keepalive{Interval: streamTimers.ping, Timeout: streamTimers.pingTimeout}
	mk := func(name string, addrs []string) *resource.Cluster {
		c := &resource.Cluster{Name: name, Type: resource.Static, ConnectTimeout: time.Second, Protocol: resource.HTTP2,
			LBPolicy: resource.RoundRobin, TCPKeepalive: ka, HTTP2Keepalive: h2, LoadAssignment: &resource.Endpoints{ClusterName: name}}
		for _, a := range addrs {
			ap := netip.MustParseAddrPort(a)
			c.LoadAssignment.Endpoints = append(c.LoadAssignment.Endpoints, resource.Endpoint{Address: ap, Port: uint32(ap.Port()), Weight: 1})
		}
		return c
	}
	retry := &resource.RetryPolicy{RetryOn: []string{"connect-failure", "refused-stream", "unavailable", "cancelled"}, NumRetries: 2, AvoidPreviousHosts: true}
	rc := &resource.RouteConfig{Name: "watch", VirtualHosts: []resource.VirtualHost{{Name: "apiserver", Domains: []string{"*"}, Routes: []resource.Route{
		{Name: "quiet", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/quiet", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: "b-only", RetryPolicy: retry}},
		{Name: "default", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true}, Action: &resource.RouteAction{Cluster: "apiserver", RetryPolicy: retry}},
	}}}}
	ip := netip.MustParseAddrPort(sp.addr)
	snap := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{"apiserver_8443": {Name: "apiserver_8443", Address: ip, BindToPort: true, Direction: resource.Outbound,
			FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{Routes: rc}}}}},
		Routes:    map[string]*resource.RouteConfig{},
		Clusters:  map[string]*resource.Cluster{"apiserver": mk("apiserver", eps), "b-only": mk("b-only", []string{bOnly})},
		Endpoints: map[string]*resource.Endpoints{},
	}
	if err := sp.p.Apply(snap); err != nil {
		t.Fatal(err)
	}
}

// runWatchScenario runs the acceptance scenario; blackhole makes upstream A unreachable
// without closing anything. aAddr is how the sidecar reaches A (directly or via a relay).
func runWatchScenario(t *testing.T, ip, aAddr, bAddr string, blackhole func(), bound time.Duration) {
	t.Helper()
	b := startAPIServer(t, bAddr, "B")
	sp := newStreamProxy(t, ip, 30*time.Second)
	sp.apply(t, []string{aAddr}, bAddr) // A only, so the first watch lands on A
	client, tr := streamClient()
	defer tr.CloseIdleConnections()
	base := "http://" + sp.addr

	w1, err := startWatch(t, client, base+"/watch?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	defer w1.close()
	if e := w1.nextEvent(t, 5*time.Second); e.Object.Server != "A" {
		t.Fatalf("first watch reached %q, want A", e.Object.Server)
	}
	sp.apply(t, []string{aAddr, bAddr}, bAddr) // now both API servers serve the watch

	q, err := startWatch(t, client, base+"/quiet?watch=true") // same client connection
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	if e := q.nextEvent(t, 5*time.Second); e.Object.Server != "B" {
		t.Fatalf("quiet stream reached %q, want B", e.Object.Server)
	}

	blackhole()
	cut := time.Now()
	// Drain events A sent before it went dark, then the watch must end within the bound.
	tm := time.NewTimer(bound)
	defer tm.Stop()
	var endErr error
wait:
	for {
		select {
		case <-w1.ev:
		case endErr = <-w1.end:
			break wait
		case <-tm.C:
			t.Fatalf("watch on the dead upstream still open %s after A went dark", bound)
		}
	}
	took := time.Since(cut)
	t.Logf("watch on dead upstream A ended after %s: %v", took.Round(time.Millisecond), endErr)
	if errors.Is(endErr, io.EOF) {
		t.Fatalf("the watch ended cleanly; a reset was expected so the client knows it broke")
	}
	info := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return strings.HasPrefix(i.Path, "/watch") && i.Flags != 0 })
	if info.Flags&(streaminfo.UpstreamConnectionTermination|streaminfo.UpstreamRemoteReset) == 0 ||
		!strings.HasPrefix(info.ResponseCodeDetails, "upstream_reset_after_response_started") {
		t.Fatalf("access log: flags %s details %q, want UC/UR after response started", info.Flags, info.ResponseCodeDetails)
	}
	t.Logf("access log: %s %s %s", info.Flags, info.ResponseCodeDetails, info.LucidError)

	// The re-watch reaches B (a client re-watches on error; allow a few attempts).
	deadline := time.Now().Add(bound)
	for {
		w2, err := startWatch(t, client, base+"/watch?watch=true")
		if err == nil {
			e := w2.nextEvent(t, 5*time.Second)
			w2.close()
			if e.Object.Server == "B" {
				break
			}
			err = fmt.Errorf("re-watch reached %s", e.Object.Server)
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-watch did not reach B within %s: %v", bound, err)
		}
		t.Logf("re-watch: %v; retrying", err)
	}

	// The quiet stream to B on the same client connection is untouched: poke B, the event
	// arrives (it has been quiet for the whole scenario, longer than the ping interval).
	select {
	case endErr := <-q.end:
		t.Fatalf("the quiet stream to B was ended: %v", endErr)
	default:
	}
	b.poke <- struct{}{}
	if e := q.nextEvent(t, 5*time.Second); e.Object.Server != "B" {
		t.Fatalf("quiet stream: event from %q", e.Object.Server)
	}
}

func waitInfo(t *testing.T, l *infoLog, pred func(*streaminfo.Info) bool) *streaminfo.Info {
	t.Helper()
	var i *streaminfo.Info
	testutil.Eventually(t, 5*time.Second, "a matching access-log record", func() bool {
		i = l.find(pred)
		return i != nil
	})
	return i
}

func TestWatchLeavesSilentUpstreamRelay(t *testing.T) {
	startAPIServer(t, "127.0.93.11:8080", "A")
	r := startRelay(t, "127.0.93.21:8080", "127.0.93.11:8080")
	// Bound with test timers: PING after 300 ms idle + 300 ms timeout, plus scheduling.
	runWatchScenario(t, "127.0.93.1", "127.0.93.21:8080", "127.0.93.12:8080", r.stop, 5*time.Second)
}
