package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/contract"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exposition is a proxy's /stats/prometheus with Istio's request metrics: productpage's
// sidecar reporting its calls (reporter source) and what it served (reporter destination).
func exposition(toV1, uh, served float64, durationsV1 [3]float64) string {
	var b strings.Builder
	b.WriteString("# TYPE istio_requests_total counter\n")
	row := func(reporter, src, dst, svc, code, flags string, v float64) {
		fmt.Fprintf(&b, "istio_requests_total{reporter=%q,source_workload=%q,source_workload_namespace=\"default\",destination_workload=%q,destination_workload_namespace=\"default\",destination_service=%q,destination_app=\"reviews\",destination_version=\"v1\",response_code=%q,response_flags=%q} %g\n",
			reporter, src, dst, svc, code, flags, v)
	}
	row("source", "productpage", "reviews-v1", "reviews.default.svc.cluster.local", "200", "-", toV1)
	row("source", "productpage", "unknown", "reviews.default.svc.cluster.local", "503", "UH", uh)
	row("destination", "unknown", "productpage", "productpage.default.svc.cluster.local", "200", "-", served)
	b.WriteString("# TYPE istio_request_duration_milliseconds histogram\n")
	for i, le := range []string{"1", "5", "+Inf"} {
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{reporter=\"source\",source_workload=\"productpage\",source_workload_namespace=\"default\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\",response_flags=\"-\",le=%q} %g\n", le, durationsV1[i])
	}
	fmt.Fprintf(&b, "istio_request_duration_milliseconds_sum{reporter=\"source\",source_workload=\"productpage\",source_workload_namespace=\"default\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\",response_flags=\"-\"} 1\n")
	fmt.Fprintf(&b, "istio_request_duration_milliseconds_count{reporter=\"source\",source_workload=\"productpage\",source_workload_namespace=\"default\",destination_workload=\"reviews-v1\",destination_workload_namespace=\"default\",destination_service=\"reviews.default.svc.cluster.local\",response_code=\"200\",response_flags=\"-\"} %g\n", durationsV1[2])
	return b.String()
}

func mustParse(t *testing.T, s string) *scrape {
	t.Helper()
	sc, err := parseMetrics(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestWindowedEdges(t *testing.T) {
	t0 := time.Unix(1000, 0)
	old := mustParse(t, exposition(100, 10, 110, [3]float64{90, 100, 100}))
	cur := mustParse(t, exposition(300, 30, 330, [3]float64{190, 290, 300}))
	edges, bounds, span := windowed([]round{
		{At: t0, Scrapes: map[string]*scrape{"productpage.default": old}},
		{At: t0.Add(10 * time.Second), Scrapes: map[string]*scrape{"productpage.default": cur}},
	}, time.Minute)
	if span != 10 || len(bounds) != 2 {
		t.Fatalf("span %v, bounds %v", span, bounds)
	}
	v1 := edges[edgeKey{From: "wl:productpage.default", To: "wl:reviews-v1.default"}]
	if v1 == nil || v1.Requests != 200 || v1.Errors != 0 {
		t.Fatalf("productpage → reviews-v1 = %+v, want 200 requests", v1)
	}
	// 100 of 200 under 1 ms, 90 more under 5 ms, 10 above: p99 is the last finite bound.
	if p := quantile(0.5, bounds, v1.Buckets, v1.Requests); p != 1 {
		t.Errorf("p50 = %v, want 1", p)
	}
	if p := quantile(0.9, bounds, v1.Buckets, v1.Requests); math.Abs(p-(1+4*80.0/90)) > 1e-9 {
		t.Errorf("p90 = %v", p)
	}
	if p := quantile(0.99, bounds, v1.Buckets, v1.Requests); p != 5 {
		t.Errorf("p99 = %v, want 5 (above every finite bound)", p)
	}
	uh := edges[edgeKey{From: "wl:productpage.default", To: "svc:reviews.default.svc.cluster.local"}]
	if uh == nil || uh.Requests != 20 || uh.Errors != 20 || uh.Flags["UH"] != 20 {
		t.Errorf("productpage → reviews (no workload) = %+v, want 20 UH failures", uh)
	}
	// No mesh proxy reported sending productpage anything: all it served came from outside.
	fromOutside(edges)
	out := edges[edgeKey{From: unknownNode, To: "wl:productpage.default"}]
	if out == nil || out.Requests != 220 {
		t.Errorf("outside → productpage = %+v, want 220", out)
	}
}

func TestCounterResetCountsFromZero(t *testing.T) {
	newer := &counts{Requests: 5, Flags: map[string]float64{}}
	older := &counts{Requests: 50, Flags: map[string]float64{}}
	if d := delta(newer, older, 0); d.Requests != 5 {
		t.Errorf("after a restart the delta is %v, want 5", d.Requests)
	}
}

func TestCauseSummary(t *testing.T) {
	for _, tc := range []struct {
		c    cause
		want string
	}{
		{cause{Flags: "UH", Subset: "v3", Text: `UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`}, "UH: empty subset v3"},
		{cause{Flags: "UH", Text: "UH: every endpoint is ejected"}, "UH: no healthy upstream"},
		{cause{Flags: "UC", Status: 503}, "UC: upstream closed the connection"},
		{cause{Flags: "NR", Status: 404}, "NR: no route"},
		{cause{Flags: "-", Status: 403, Text: "RBAC: access denied by policy deny-all"}, "RBAC: denied"},
		{cause{Flags: "-", Status: 500}, "500 from the app"},
		{cause{Flags: "UH,URX", Status: 503}, "UH: no healthy upstream"},
	} {
		if got := tc.c.summary(); got != tc.want {
			t.Errorf("summary(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestParseNodeID(t *testing.T) {
	p, ok := parseNodeID("router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local")
	if !ok || !p.Gateway || p.Name != "istio-ingressgateway.istio-system" || p.IP != "127.0.0.1" {
		t.Errorf("router id = %+v, %v", p, ok)
	}
	for _, bad := range []string{"", "sidecar~x~a.b~b.svc", "sidecar~127.0.0.1", "other~127.0.0.1~a.b~b.svc.cluster.local", "sidecar~127.0.0.1~~x"} {
		if _, ok := parseNodeID(bad); ok {
			t.Errorf("parseNodeID(%q) accepted", bad)
		}
	}
}

func FuzzParseNodeID(f *testing.F) {
	f.Add("sidecar~127.0.10.1~productpage.default~default.svc.cluster.local")
	f.Add("router~::1~gw~ns")
	f.Fuzz(func(t *testing.T, id string) {
		if p, ok := parseNodeID(id); ok && (p.Workload == "" || p.Name == "") {
			t.Fatalf("accepted %q without a workload: %+v", id, p)
		}
	})
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(exposition(1, 2, 3, [3]float64{1, 2, 3}))
	f.Add("istio_requests_total{reporter=\"source\"} 1\n")
	f.Add("# TYPE x histogram\nx_bucket{le=\"1\"} 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := parseMetrics(strings.NewReader(s))
		if err != nil {
			return
		}
		for k, c := range sc.Edges {
			if k.From == "" || k.To == "" || len(c.Buckets) > len(sc.Bounds) {
				t.Fatalf("edge %+v %+v, bounds %v", k, c, sc.Bounds)
			}
		}
	})
}

const configDump = `{"configs":[
 {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","dynamic_listeners":[{"name":"0.0.0.0_9080","active_state":{"listener":{"name":"0.0.0.0_9080","address":{"socket_address":{"address":"0.0.0.0","port_value":9080}},"filter_chains":[{},{}]}}}],
  "static_listeners":[{"listener":{"name":"0.0.0.0_15021","address":{"socket_address":{"address":"127.0.10.1","port_value":15021}}}}]},
 {"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump","dynamic_active_clusters":[{"cluster":{"name":"outbound|9080|v3|reviews.default.svc.cluster.local","type":"EDS"}}],"static_clusters":[{"cluster":{"name":"agent"}}]},
 {"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump","dynamic_route_configs":[{"route_config":{"name":"9080","virtual_hosts":[{"name":"reviews:9080","domains":["reviews","reviews:9080"],"routes":[
   {"match":{"prefix":"/v3"},"route":{"cluster":"outbound|9080|v3|reviews.default.svc.cluster.local"}},
   {"match":{"prefix":"/"},"route":{"weighted_clusters":{"clusters":[{"name":"outbound|9080|v1|reviews.default.svc.cluster.local","weight":80},{"name":"outbound|9080|v2|reviews.default.svc.cluster.local","weight":20}]}}}]}]}}]},
 {"@type":"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump","dynamic_endpoint_configs":[{"endpoint_config":{"cluster_name":"outbound|9080|v1|reviews.default.svc.cluster.local","endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"127.0.10.2","port_value":9080}}},"health_status":"HEALTHY"},{"endpoint":{"address":{"socket_address":{"address":"127.0.10.6","port_value":9080}}},"health_status":"UNHEALTHY"}]}]}}]}
]}`

func TestParseConfigDump(t *testing.T) {
	c, err := parseConfigDump([]byte(configDump))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(c)
	for _, want := range []string{
		`{"name":"0.0.0.0_15021","address":"127.0.10.1:15021","chains":0}`,
		`{"name":"0.0.0.0_9080","address":"0.0.0.0:9080","chains":2}`,
		`"match":"/v3*","destination":"outbound|9080|v3|reviews.default.svc.cluster.local"`,
		`"destination":"outbound|9080|v1|reviews.default.svc.cluster.local 80%, outbound|9080|v2|reviews.default.svc.cluster.local 20%"`,
		`{"name":"agent","type":"STATIC"}`,
		`{"cluster":"outbound|9080|v1|reviews.default.svc.cluster.local","address":"127.0.10.6:9080","health":"UNHEALTHY"}`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("config lacks %s:\n%s", want, got)
		}
	}
	if _, err := parseConfigDump([]byte(`{"configs":[{"@type":"x.ListenersConfigDump","dynamic_listeners":7}]}`)); err == nil || !strings.Contains(err.Error(), "configs[0] (x.ListenersConfigDump)") {
		t.Errorf("a malformed dump's error = %v, want it to name configs[0]", err)
	}
}

func FuzzParseConfigDump(f *testing.F) {
	f.Add(configDump)
	f.Add(`{"configs":[{"@type":"RoutesConfigDump","dynamic_route_configs":[{"route_config":{"virtual_hosts":[{"routes":[{"match":{"safe_regex":{"regex":"x"}}}]}]}}]}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseConfigDump([]byte(s))
	})
}

// TestHTTP checks the routes a person reaches: the page, the API's refusals, the events
// stream, and that Run and every stream stop with the context.
func TestHTTP(t *testing.T) {
	d := New(Options{
		Proxies: func() []contract.ProxyStatus {
			return []contract.ProxyStatus{{ID: "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local", Connected: true,
				Metadata: map[string]string{"LABELS": "app=productpage,version=v1"}}}
		},
		AdminPort: 1, StatusPort: 1, Interval: 10 * time.Millisecond, // nothing listens on port 1
	})
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); d.Run(ctx) }()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/dashboard/"); code != 200 || !strings.Contains(body, "<title>Lucid dashboard</title>") {
		t.Errorf("/dashboard/: %d %.80q", code, body)
	}
	if code, body := get("/dashboard/app.js"); code != 200 || !strings.Contains(body, "EventSource") {
		t.Errorf("/dashboard/app.js: %d", code)
	}
	if code, body := get("/debug/tap?workload=nope"); code != 404 || !strings.Contains(body, `no proxy named "nope.default"; the control plane knows: productpage.default`) {
		t.Errorf("/debug/tap?workload=nope: %d %q", code, body)
	}
	if code, body := get("/debug/tap"); code != 400 || !strings.Contains(body, "workload is required") {
		t.Errorf("/debug/tap: %d %q", code, body)
	}
	if code, body := get("/debug/tap?workload=productpage"); code != 502 || !strings.Contains(body, "tap of productpage.default at 127.0.0.1:1") {
		t.Errorf("/debug/tap to a proxy that does not answer: %d %q", code, body)
	}
	code, body := get("/dashboard/api/graph")
	var g Graph
	if err := json.Unmarshal([]byte(body), &g); code != 200 || err != nil || len(g.Nodes) != 1 || g.Nodes[0].Detail != "productpage v1" {
		t.Errorf("/dashboard/api/graph: %d %v %s", code, err, body)
	}
	code, body = get("/dashboard/api/workload?name=productpage")
	if code != 200 || !strings.Contains(body, `"config_error":"config of productpage.default: `) {
		t.Errorf("/dashboard/api/workload of an unreachable proxy: %d %s", code, body)
	}

	// An events stream is open when the dashboard stops: it ends too.
	resp, err := http.Get(srv.URL + "/dashboard/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 512)
	if n, _ := resp.Body.Read(buf); !strings.Contains(string(buf[:n]), "retry: 1000") {
		t.Errorf("events stream starts with %q", buf[:n])
	}
	cancel()
	<-runDone
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("events stream did not end cleanly: %v", err)
	}
}
