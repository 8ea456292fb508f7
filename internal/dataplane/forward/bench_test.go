package forward_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Benchmarks of the data path: a real loopback client → proxy (net/http server + Forwarder)
// → upstream (net/http server answering 1 KiB), as bench/run.sh measures one sidecar hop,
// over HTTP/1.1 and h2c end to end. Addresses in 127.0.84.0/24.
//
//	go test -run '^$' -bench RoundTrip -benchmem -count 10 ./internal/forward/ | tee new.txt
//	benchstat old.txt new.txt

// hop is one proxy in front of one upstream.
type hop struct {
	url    string
	client *http.Client
	infos  chan *streaminfo.Info // the last requests' records (copies); never blocks
}

// newHop starts an upstream serving h, a proxy in front of it with a cluster of protocol
// proto, and a client speaking proto to the proxy.
func newHop(tb testing.TB, proto resource.Protocol, h http.Handler) *hop {
	tb.Helper()
	return newHopOn(tb, proto, hopServer(tb, "127.0.84.2:0", h), hopServer)
}

// newHopOn is newHop with the upstream at up and the proxy served by serve: a sidecar's
// inbound hop.
func newHopOn(tb testing.TB, proto resource.Protocol, up string, serve func(testing.TB, string, http.Handler) string) *hop {
	tb.Helper()
	return newHopDir(tb, proto, up, serve, "inbound")
}

// newHopDir is newHopOn in the given direction: "outbound" is a sidecar's hop to a mesh
// service, which sends the workload's peer metadata upstream.
//
// shape, when given, changes the route and the cluster before they are used.
func newHopDir(tb testing.TB, proto resource.Protocol, up string, serve func(testing.TB, string, http.Handler) string, direction string,
	shape ...func(*resource.Route, *resource.Cluster),
) *hop {
	tb.Helper()
	ap := netip.MustParseAddrPort(up)
	cl := &resource.Cluster{Name: "c", Type: resource.Static, ConnectTimeout: time.Second, IdleTimeout: time.Hour,
		Info:     resource.ClusterInfo{ServiceHost: "reviews.default.svc.cluster.local", ServiceName: "reviews", ServiceNamespace: "default"},
		Protocol: proto, LoadAssignment: &resource.Endpoints{ClusterName: "c", Endpoints: []resource.Endpoint{{
			Address: ap, Port: uint32(ap.Port()), Weight: 1,
			Workload: "reviews-v1;default;reviews;v1;Kubernetes",
			Labels:   map[string]string{"app": "reviews", "version": "v1"},
		}}}}
	rt := toCluster("c")
	for _, f := range shape {
		f(&rt, cl)
	}
	log := slog.New(slog.DiscardHandler)
	cm, ps := cluster.NewManager(log), pool.NewSet(log)
	ps.SetSourceAddress(netip.MustParseAddr("127.0.84.1")) // as the sidecar: its workload address
	cs := map[string]*resource.Cluster{"c": cl}
	cm.Update(cs, nil)
	ps.Update(cs)
	rc := routes(rt)
	hp := &hop{infos: make(chan *streaminfo.Info, 16)}
	fwd := forward.New(forward.Options{Clusters: cm, Pools: ps, Logger: log,
		// As a sidecar's: its metadata goes back on every inbound answer.
		PeerMetadata: forward.PeerMetadata{ID: "sidecar~127.0.84.2~reviews-v1.default~default.svc.cluster.local", Value: "ChgKDkFQUF9DT05UQUlORVJTEgYaBHJldmlld3M="},
		Observers: []func(*streaminfo.Info){func(i *streaminfo.Info) {
			cp := *i
			select {
			case hp.infos <- &cp:
			default: // benchmarks do not read them
			}
		}}})
	in := forward.Inbound{Routes: route.Compile(rc), RouteConfigName: "9080",
		HTTP:     &resource.HTTPManager{ServerName: "istio-envoy", FaultFilter: true},
		Listener: "0.0.0.0_9080", Direction: direction}
	proxy := serve(tb, "127.0.84.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := in // the addresses, as the proxy's handler takes them (withAddrs)
		if a, ok := r.Context().Value(addrsKey{}).(*connAddrs); ok {
			in.LocalAddr, in.RemoteAddr = a.local, a.remote
		}
		fwd.Serve(w, r, in)
	}))
	t := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64, Protocols: new(http.Protocols)}
	if proto == resource.HTTP2 {
		t.Protocols.SetUnencryptedHTTP2(true)
	} else {
		t.Protocols.SetHTTP1(true)
	}
	hp.url = "http://" + proxy
	hp.client = &http.Client{Transport: t}
	tb.Cleanup(func() {
		t.CloseIdleConnections()
		fwd.Close()
		ps.Close()
	})
	return hp
}

// echoKiB answers 1 KiB, as the fortio server of bench/run.sh does.
func echoKiB() http.Handler {
	payload := strings.Repeat("x", 1024)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, payload) })
}

// get sends one request; it reports failures with Error (RunParallel's goroutines cannot Fatal).
func (h *hop) get(b *testing.B) bool {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+"/echo?size=1024", nil)
	req.Host = "svc:9080"
	resp, err := h.client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || n != 1024 {
		b.Errorf("status %d, %d bytes (x-lucid-error %q)", resp.StatusCode, n, resp.Header.Get("X-Lucid-Error"))
		return false
	}
	return true
}

// connAddrs are a connection's two addresses, which the proxy's ConnContext converts once
// per connection; withAddrs is that ConnContext for the test's servers.
type connAddrs struct{ local, remote netip.AddrPort }

type addrsKey struct{}

func withAddrs(ctx context.Context, c net.Conn) context.Context {
	a := new(connAddrs)
	if l, ok := c.LocalAddr().(*net.TCPAddr); ok {
		a.local = netip.AddrPortFrom(l.AddrPort().Addr().Unmap(), l.AddrPort().Port())
	}
	if r, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a.remote = netip.AddrPortFrom(r.AddrPort().Addr().Unmap(), r.AddrPort().Port())
	}
	return context.WithValue(ctx, addrsKey{}, a)
}

func hopServer(tb testing.TB, addr string, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnContext: withAddrs}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

var benchProtos = []struct {
	name  string
	proto resource.Protocol
}{{"http1", resource.HTTP1}, {"h2c", resource.HTTP2}}

// BenchmarkRoundTrip is one request at a time through the hop (latency and allocations).
func BenchmarkRoundTrip(b *testing.B) {
	for _, p := range benchProtos {
		b.Run(p.name, func(b *testing.B) {
			h := newHop(b, p.proto, echoKiB())
			if !h.get(b) {
				return
			}
			b.ReportAllocs()
			for b.Loop() {
				if !h.get(b) {
					return
				}
			}
		})
	}
}

// BenchmarkRoundTripParallel is 16 concurrent clients (bench/run.sh's -c 16) over the
// same connections (h2c: multiplexed streams).
func BenchmarkRoundTripParallel(b *testing.B) {
	for _, p := range benchProtos {
		b.Run(p.name, func(b *testing.B) {
			h := newHop(b, p.proto, echoKiB())
			if !h.get(b) {
				return
			}
			b.ReportAllocs()
			b.SetParallelism(8) // × GOMAXPROCS (2 on the bench machine): 16 clients
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !h.get(b) {
						return
					}
				}
			})
		})
	}
}
