package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// echoServer answers each connection by echoing until the client half-closes, then writes
// "bye" and closes (so a half-close must be passed through for "bye" to arrive).
func echoServer(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
				_, _ = c.Write([]byte("bye"))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// tcpSnapshot: explicit proxy on ip:15001 with an outbound tcp_proxy listener for port 5432
// and an inbound TCP chain on port 7000; both to the echo server, with idle timeout idle.
func tcpSnapshot(ip, echo string, idle time.Duration, maxConns uint32) *resource.Snapshot {
	a := netip.MustParseAddr(ip)
	cl := staticCluster("outbound|5432||db", echo)
	cl.MaxConnections = maxConns
	return &resource.Snapshot{
		Listeners: map[string]*resource.Listener{
			"virtualOutbound": {Name: "virtualOutbound", Address: netip.AddrPortFrom(a, 15001), BindToPort: true, UseOriginalDst: true, Direction: resource.Outbound,
				DefaultChain: &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "PassthroughCluster"}}},
			"0.0.0.0_5432": {Name: "0.0.0.0_5432", Address: netip.MustParseAddrPort("0.0.0.0:5432"), Direction: resource.Outbound,
				FilterChains: []resource.FilterChain{{TCP: &resource.TCPProxy{Cluster: "outbound|5432||db", IdleTimeout: idle}}}},
			"virtualInbound": {Name: "virtualInbound", Address: netip.AddrPortFrom(a, 15006), BindToPort: true, UseOriginalDst: true, Direction: resource.Inbound,
				FilterChains: []resource.FilterChain{{Match: resource.FilterChainMatch{DestinationPort: 7000}, TCP: &resource.TCPProxy{Cluster: "inbound|7000||", IdleTimeout: idle}}}},
		},
		Routes: map[string]*resource.RouteConfig{},
		Clusters: map[string]*resource.Cluster{
			"outbound|5432||db":  cl,
			"inbound|7000||":     staticCluster("inbound|7000||", echo),
			"PassthroughCluster": {Name: "PassthroughCluster", Type: resource.OriginalDst, ConnectTimeout: time.Second},
		},
		Endpoints: map[string]*resource.Endpoints{},
	}
}

// connectVia opens a CONNECT tunnel to target through the explicit proxy.
func connectVia(t *testing.T, proxy, target string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // a 200 to CONNECT has no body; the tunnel follows
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %d %s", target, resp.StatusCode, resp.Header.Get("X-Lucid-Error"))
	}
	return c, br
}

// halfCloseRoundTrip writes msg, half-closes, and reads everything back.
func halfCloseRoundTrip(t *testing.T, c net.Conn, r io.Reader, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTCPProxy(t *testing.T) {
	const ip, echo = "127.0.93.4", "127.0.93.41:5432"
	echoServer(t, echo)
	sp := newStreamProxy(t, ip, time.Second)
	if err := sp.p.Apply(tcpSnapshot(ip, echo, time.Hour, 0)); err != nil {
		t.Fatal(err)
	}

	t.Run("CONNECT to a TCP service port, half-close passed on", func(t *testing.T) {
		c, br := connectVia(t, ip+":15001", "db.default.svc.cluster.local:5432")
		defer c.Close()
		if got := halfCloseRoundTrip(t, c, br, "ping"); got != "pingbye" {
			t.Fatalf("got %q", got)
		}
		info := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return i.UpstreamCluster == "outbound|5432||db" })
		if info.Method != "" || info.BytesReceived != 4 || info.BytesSent != 7 || info.UpstreamHost != echo || info.Flags != 0 {
			t.Fatalf("access log record: %+v", info)
		}
	})
	t.Run("CONNECT to an unknown port takes the passthrough chain", func(t *testing.T) {
		c, br := connectVia(t, ip+":15001", echo)
		defer c.Close()
		if got := halfCloseRoundTrip(t, c, br, "x"); got != "xbye" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("inbound TCP port", func(t *testing.T) {
		c, err := net.Dial("tcp", ip+":7000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := halfCloseRoundTrip(t, c, c, "in"); got != "inbye" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestTCPProxyIdleTimeoutAndLimits(t *testing.T) {
	const ip, echo = "127.0.93.5", "127.0.93.51:5432"
	echoServer(t, echo)
	sp := newStreamProxy(t, ip, time.Second)
	// The idle timeout leaves the second connection ample time to arrive while the first is
	// open (under a loaded machine 300 ms was not), and still ends the first within the bound below.
	if err := sp.p.Apply(tcpSnapshot(ip, echo, 1500*time.Millisecond, 1)); err != nil {
		t.Fatal(err)
	}
	c, br := connectVia(t, ip+":15001", "db:5432")
	defer c.Close()
	// One byte echoed: the first connection holds its upstream before the second arrives.
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if b, err := br.ReadByte(); err != nil || b != 'a' {
		t.Fatalf("echo: %q %v", b, err)
	}
	// A second connection while the first is open exceeds max_connections 1: closed (UO).
	c2, br2 := connectVia(t, ip+":15001", "db:5432")
	_ = c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := br2.Read(make([]byte, 1)); err == nil {
		t.Fatalf("second connection over the limit read %d bytes", n)
	}
	c2.Close()
	if i := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return i.Flags == streaminfo.UpstreamOverflow }); !strings.Contains(i.LucidError, "max_connections") {
		t.Fatalf("overflow explanation %q", i.LucidError)
	}
	// The first, left quiet, is closed after the idle timeout.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(start) > 4*time.Second {
		t.Fatalf("idle connection not closed by the idle timeout: %v", err)
	}
	if i := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return i.ConnectionTerminationDetails == "idle_timeout" }); i.UpstreamCluster != "outbound|5432||db" {
		t.Fatalf("idle record: %+v", i)
	}
}

// Connections that arrive together count against max_connections from their dial, so no
// more of them reach the upstream than the DestinationRule allows.
func TestTCPMaxConnectionsUnderConcurrentArrivals(t *testing.T) {
	const ip, echo, limit, tries = "127.0.93.9", "127.0.93.91:5432", 2, 8
	echoServer(t, echo)
	sp := newStreamProxy(t, ip, time.Second)
	if err := sp.p.Apply(tcpSnapshot(ip, echo, time.Hour, limit)); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	echoed := make(chan bool, tries)
	conns := make(chan net.Conn, tries)
	for range tries {
		go func() {
			c, err := net.Dial("tcp", ip+":15001")
			if err != nil {
				echoed <- false
				return
			}
			conns <- c
			<-start
			// CONNECT and the first byte in one write: the proxy picks the upstream at once.
			fmt.Fprintf(c, "CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nx")
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil {
				echoed <- false
				return
			}
			resp.Body.Close() // a CONNECT's answer has no body; the tunnel follows
			if resp.StatusCode != http.StatusOK {
				echoed <- false
				return
			}
			b, err := br.ReadByte()
			echoed <- err == nil && b == 'x'
		}()
	}
	close(start)
	got := 0
	for range tries {
		if <-echoed {
			got++
		}
	}
	close(conns)
	for c := range conns {
		c.Close()
	}
	if got != limit {
		t.Fatalf("%d of %d simultaneous connections reached the upstream; max_connections is %d", got, tries, limit)
	}
}

func TestTCPConnectionOnRemovedEndpointEnds(t *testing.T) {
	const ip, echo = "127.0.93.6", "127.0.93.61:5432"
	echoServer(t, echo)
	sp := newStreamProxy(t, ip, 200*time.Millisecond)
	snap := tcpSnapshot(ip, echo, time.Hour, 0)
	if err := sp.p.Apply(snap); err != nil {
		t.Fatal(err)
	}
	c, br := connectVia(t, ip+":15001", "db:5432")
	defer c.Close()
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if b, err := br.ReadByte(); err != nil || b != 'a' {
		t.Fatalf("echo: %q %v", b, err)
	}
	next := tcpSnapshot(ip, echo, time.Hour, 0)
	next.Clusters["outbound|5432||db"].LoadAssignment.Endpoints = nil
	if err := sp.p.Apply(next); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("connection to the removed endpoint still open: %v", err)
	}
	i := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return i.Flags == streaminfo.LocalReset })
	if !strings.Contains(i.LucidError, "left cluster outbound|5432||db") {
		t.Fatalf("explanation %q", i.LucidError)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTCPMetrics: a TCP connection through the sidecar counts Istio's istio_tcp_* metrics
// with Istio's labels; a refused one counts as opened and closed with its flag.
func TestTCPMetrics(t *testing.T) {
	const ip, echo = "127.0.89.20", "127.0.89.21:5432"
	echoServer(t, echo)
	self := streaminfo.Peer{Workload: "web", Namespace: "default", App: "web", Version: "v1", Cluster: "Kubernetes"}
	st := stats.New(self)
	lg := &infoLog{}
	p := observedProxy(t, ip, forward.Options{Self: self,
		ConnectionObservers: []func(*streaminfo.Info){lg.observe},
		ConnectionMetrics:   func(i *streaminfo.Info) forward.ConnectionCounter { return st.TCPOpened(i) }})
	snap := tcpSnapshot(ip, echo, time.Hour, 0)
	snap.Clusters["outbound|5432||db"].Info = resource.ClusterInfo{ServiceHost: "db.default.svc.cluster.local", ServiceName: "db", ServiceNamespace: "default"}
	snap.Clusters["refused"] = staticCluster("refused", "127.0.89.22:9") // nothing listens
	snap.Listeners["0.0.0.0_5433"] = &resource.Listener{Name: "0.0.0.0_5433", Address: netip.MustParseAddrPort("0.0.0.0:5433"), Direction: resource.Outbound,
		FilterChains: []resource.FilterChain{{TCP: &resource.TCPProxy{Cluster: "refused"}}}}
	if err := p.Apply(snap); err != nil {
		t.Fatal(err)
	}

	c, br := connectVia(t, ip+":15001", "db.default.svc.cluster.local:5432")
	if got := halfCloseRoundTrip(t, c, br, "ping"); got != "pingbye" {
		t.Fatalf("got %q", got)
	}
	c.Close()
	waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.UpstreamCluster == "outbound|5432||db" })
	c2, _ := connectVia(t, ip+":15001", "db.default.svc.cluster.local:5433")
	_, _ = io.Copy(io.Discard, c2) // the proxy closes it: connection refused upstream
	c2.Close()
	waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.UpstreamCluster == "refused" })

	want := map[string]float64{
		"istio_tcp_connections_opened_total": 1, "istio_tcp_connections_closed_total": 1,
		"istio_tcp_received_bytes_total": 4, "istio_tcp_sent_bytes_total": 7,
	}
	got := tcpSeries(t, st, "db.default.svc.cluster.local", "-")
	for name, v := range want {
		if got[name] == nil || got[name]["value"] != fmt.Sprint(v) {
			t.Fatalf("%s: got %v, want %v", name, got[name], v)
		}
	}
	l := got["istio_tcp_connections_opened_total"]
	for k, v := range map[string]string{"reporter": "source", "source_workload": "web", "source_app": "web",
		"destination_service_name": "db", "request_protocol": "tcp", "connection_security_policy": "unknown"} {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
	if _, ok := l["response_code"]; ok {
		t.Error("TCP metrics carry response_code")
	}
	refused := tcpSeries(t, st, "unknown", "UF")
	if refused["istio_tcp_connections_opened_total"]["value"] != "1" || refused["istio_tcp_connections_closed_total"]["value"] != "1" {
		t.Fatalf("refused connection: %v", refused)
	}
}

// observedProxy is a proxy on ip whose forwarder has the observers and metrics of fo.
func observedProxy(t *testing.T, ip string, fo forward.Options) *Proxy {
	t.Helper()
	fo.Clusters, fo.Pools = cluster.NewManager(nil), pool.NewSet(nil)
	fw := forward.New(fo)
	p := New(Options{IP: netip.MustParseAddr(ip), Forwarder: fw, Clusters: fo.Clusters, Pools: fo.Pools, DrainTimeout: time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		fw.Close()
		fo.Pools.Close()
	})
	return p
}

// tcpSeries gathers the istio_tcp_* series with the given destination_service and
// response_flags: metric name → labels, plus "value".
func tcpSeries(t *testing.T, st *stats.Stats, dest, flags string) map[string]map[string]string {
	t.Helper()
	mfs, err := st.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "istio_tcp_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["destination_service"] != dest || l["response_flags"] != flags {
				continue
			}
			l["value"] = fmt.Sprint(m.GetCounter().GetValue())
			out[mf.GetName()] = l
		}
	}
	return out
}

// TestConnectRefusedIsRecorded: under REGISTRY_ONLY, a CONNECT to a port with no listener
// is refused with 502 NR and the explanation, and the refusal is a request like any other
// local reply: one access-log record and the request metrics.
func TestConnectRefusedIsRecorded(t *testing.T) {
	const ip = "127.0.93.8"
	self := streaminfo.Peer{Workload: "web", Namespace: "default", App: "web", Version: "v1", Cluster: "Kubernetes"}
	st := stats.New(self)
	lg := &infoLog{}
	p := observedProxy(t, ip, forward.Options{Self: self, Observers: []func(*streaminfo.Info){lg.observe, st.Record}})
	snap := tcpSnapshot(ip, "127.0.93.81:5432", time.Hour, 0)
	snap.Listeners["virtualOutbound"].DefaultChain.TCP.Cluster = "BlackHoleCluster"
	if err := p.Apply(snap); err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", ip+":15001")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT example.com:7777 HTTP/1.1\r\nHost: example.com:7777\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	const why = "NR: no listener for port 7777 and the outbound traffic policy is REGISTRY_ONLY (BlackHoleCluster)"
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Lucid-Error") != why {
		t.Fatalf("CONNECT answered %d, x-lucid-error %q", resp.StatusCode, resp.Header.Get("X-Lucid-Error"))
	}
	i := waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.Method == http.MethodConnect })
	if i.ResponseCode != http.StatusBadGateway || i.Flags != streaminfo.NoRouteFound || i.LucidError != why || i.Authority != "example.com:7777" {
		t.Fatalf("access-log record: %+v", i)
	}
	rec := httptest.NewRecorder()
	st.PrometheusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/prometheus", nil))
	var counted bool
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "istio_requests_total{") && strings.Contains(l, `response_code="502"`) && strings.Contains(l, `response_flags="NR"`) {
			counted = strings.HasSuffix(l, " 1")
		}
	}
	if !counted {
		t.Fatalf("no istio_requests_total{response_code=\"502\",response_flags=\"NR\"} 1 in:\n%s", rec.Body.String())
	}
}
