package accesslog

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

func filter(t *testing.T, expr string) *celattr.Expr {
	t.Helper()
	x, err := celattr.CompileFilter(expr)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestRouterFiltersByCEL: a listener whose access log has a CEL filter logs exactly the
// requests it matches; one with none of its own falls back on the proxy's log; /dev/null
// (a Telemetry that turns logging off) logs nothing.
func TestRouterFiltersByCEL(t *testing.T) {
	var def bytes.Buffer
	other := filepath.Join(t.TempDir(), "telemetry.log")
	defLog := New(&def, Text)
	rt := NewRouter(defLog, "/var/log/proxy.log", Text, nil)
	only5xx := []resource.AccessLog{{Path: "/var/log/proxy.log", Filter: filter(t, "response.code >= 500")}}
	byHeader := []resource.AccessLog{{Path: other, Filter: filter(t, "request.headers['x-user'] == 'jason' && xds.cluster_name.startsWith('outbound')")}}
	off := []resource.AccessLog{{Path: resource.DevNull}}

	req := func(code int, path string) *streaminfo.Info {
		in := fullInfo()
		in.ResponseCode, in.Path = code, path
		return in
	}
	h := http.Header{"X-User": {"jason"}}
	rt.Log(req(200, "/ok"), only5xx, h)
	rt.Log(req(503, "/fail"), only5xx, h)
	rt.Log(req(404, "/nf"), only5xx, h)
	rt.Log(req(200, "/plain"), nil, h) // no access log of its own: the proxy's
	rt.Log(req(500, "/off"), off, h)
	rt.Log(req(200, "/jason"), byHeader, h)
	rt.Log(req(200, "/anon"), byHeader, http.Header{})
	rt.Close() // writes what the telemetry file's logger holds
	defLog.Flush()

	got := def.String()
	for _, want := range []string{`"GET /fail HTTP/1.1" 503`, `"GET /plain HTTP/1.1" 200`} {
		if !strings.Contains(got, want) {
			t.Errorf("proxy log lacks %s:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 2 {
		t.Errorf("proxy log has %d lines; want 2 (503 and the unfiltered one):\n%s", n, got)
	}
	b, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Count(s, "\n") != 1 || !strings.Contains(s, "/jason") {
		t.Errorf("telemetry file = %q; want the one request with x-user: jason", s)
	}
}

// TestAttributes: the values a filter sees, in Envoy's attribute names and types.
func TestAttributes(t *testing.T) {
	in := fullInfo()
	in.Flags = streaminfo.NoHealthyUpstream | streaminfo.NoClusterFound
	in.GRPCStatus = "14"
	in.Direction, in.Source.Principal = "inbound", "spiffe://cluster.local/ns/default/sa/productpage"
	a := &attributes{in: in, h: http.Header{"X-Forwarded-Proto": {"https"}, "Accept": {"a", "b"}}}
	for _, expr := range []string{
		"request.url_path == '/reviews/0' && request.method == 'GET' && request.host == 'reviews:9080'",
		"request.scheme == 'https' && request.headers['accept'] == 'a,b'",
		"request.duration > duration('40ms') && request.time < timestamp('2027-01-01T00:00:00Z')",
		"response.code == 200 && response.grpc_status == 14 && response.code_details == 'via_upstream'",
		"response.flags == 0x2 + 0x1000000", // UH and NC at Envoy's bits
		"connection.mtls",
		"source.port == 40112 && destination.address == '127.0.1.1:15001'",
		"upstream.address == '127.0.1.2:9080' && upstream.port == 9080",
		"xds.route_name == 'default'",
	} {
		if !filter(t, expr).Match(a) {
			t.Errorf("%s: false", expr)
		}
	}
}

func TestEnvoyFlags(t *testing.T) {
	for _, tc := range []struct {
		f    streaminfo.Flag
		want int64
	}{
		{streaminfo.FailedLocalHealthCheck, 0x1},
		{streaminfo.UpstreamMaxStreamDurationReached, 0x80000},
		{streaminfo.NoFilterConfigFound, 0x200000},
		{streaminfo.DNSResolutionFailed, 0x4000000},
		{streaminfo.DownstreamRemoteReset, 0x10000000},
	} {
		if got := EnvoyFlags(tc.f); got != tc.want {
			t.Errorf("EnvoyFlags(%v) = %#x; want %#x", tc.f, got, tc.want)
		}
	}
}

// TestConnectionAttributes: an opaque TCP connection's filter reads the connection (the
// addresses, mutual TLS, the upstream, the cluster, the flags); request.* is absent, so a
// filter about the request is false and the connection is not logged.
func TestConnectionAttributes(t *testing.T) {
	in := fullInfo()
	in.Method, in.Path, in.Protocol, in.ResponseCode, in.ResponseCodeDetails = "", "", "", 0, ""
	in.MTLS, in.Flags = true, streaminfo.UpstreamConnectionFailure
	a := &attributes{in: in, tcp: true}
	for expr, want := range map[string]bool{
		"connection.mtls && destination.address == '127.0.1.1:15001' && source.port == 40112": true,
		"upstream.port == 9080 && xds.cluster_name.startsWith('outbound|9080')":               true,
		"response.flags != 0 && response.size == 358":                                         true,
		"!has(response.code) && source.port > 0":                                              true,
		"request.method == 'GET'":                                                             false, // absent: an error, so false
		"response.code >= 0":                                                                  false,
	} {
		if got := filter(t, expr).Match(a); got != want {
			t.Errorf("%s on a TCP connection: %v; want %v", expr, got, want)
		}
	}

	// Through the router: the chain's filter picks the connection's line; a chain
	// without access logs falls back on the proxy's.
	var def bytes.Buffer
	defLog := New(&def, Text)
	rt := NewRouter(defLog, "/dev/stdout", Text, nil)
	defer rt.Close()
	rt.LogConnection(in, []resource.AccessLog{{Path: "/dev/stdout", Filter: filter(t, "destination.port == 15001")}})
	rt.LogConnection(in, []resource.AccessLog{{Path: "/dev/stdout", Filter: filter(t, "destination.port == 9999")}})
	rt.LogConnection(in, []resource.AccessLog{{Path: "/dev/stdout", Filter: filter(t, "request.path == '/'")}})
	rt.LogConnection(in, []resource.AccessLog{{Path: resource.DevNull}})
	rt.LogConnection(in, nil)
	defLog.Flush()
	if got := def.String(); strings.Count(got, "\n") != 2 || !strings.Contains(got, `"- - -" 0 UF`) {
		t.Errorf("proxy log:\n%s\nwant two TCP lines (the matching filter's and the fallback's)", got)
	}
}

// TestFilterCostBounded: a request within Envoy's default header limits is filtered
// without cost tracking; one past them (more headers than the cost estimate assumed) is
// tracked and its evaluation stopped at celattr.MaxCost: the scan is not finished and
// the request is not logged, rather than every such request costing what it asks.
func TestFilterCostBounded(t *testing.T) {
	scan := filter(t, "!request.headers.exists(k, request.headers[k].contains('never') || request.headers[k].endsWith('never'))")
	few := &attributes{in: fullInfo(), h: http.Header{"X-User": {"jason"}}}
	if !few.WithinBounds() || !scan.Match(few) {
		t.Fatalf("a request with one header: within bounds %v, matched %v", few.WithinBounds(), scan.Match(few))
	}
	many := http.Header{}
	for i := range 2000 {
		many[fmt.Sprintf("X-H%d", i)] = []string{strings.Repeat("v", 4<<10)}
	}
	big := &attributes{in: fullInfo(), h: many}
	if big.WithinBounds() {
		t.Fatal("2000 headers of 4 KiB: within the estimate's bounds")
	}
	if scan.Match(big) {
		t.Error("a scan over 8 MiB of headers ran to the end; want it stopped at the cost limit")
	}
	if n := testing.AllocsPerRun(100, func() { few.WithinBounds() }); n != 0 {
		t.Errorf("WithinBounds allocates %v times", n)
	}
}

// A listener without access logs of its own costs no allocation, with or without a
// proxy logger: no filter attributes are built for it.
func TestRouterFallbackAllocations(t *testing.T) {
	in, h := fullInfo(), http.Header{}
	for _, def := range []*Logger{nil, New(io.Discard, Text)} {
		rt := NewRouter(def, "/dev/stdout", Text, nil)
		rt.Log(in, nil, h)
		if n := testing.AllocsPerRun(100, func() { rt.Log(in, nil, h); rt.LogConnection(in, nil) }); n != 0 {
			t.Errorf("proxy logger %v: %v allocations per request, want 0", def != nil, n)
		}
		rt.Close()
		if def != nil {
			_ = def.Close()
		}
	}
}
