package stats

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

var productpage = streaminfo.Peer{
	Workload: "productpage-v1", Namespace: "default", App: "productpage", Version: "v1",
	Cluster: "Kubernetes", Principal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
}

func outboundToReviews(code int, flags streaminfo.Flag) *streaminfo.Info {
	return &streaminfo.Info{
		Direction:                   "outbound",
		Duration:                    12 * time.Millisecond,
		BytesReceived:               0,
		BytesSent:                   300,
		ResponseCode:                code,
		Flags:                       flags,
		Destination:                 streaminfo.Peer{Workload: "reviews-v1", Namespace: "default", App: "reviews", Version: "v1", Cluster: "Kubernetes"},
		DestinationService:          "reviews.default.svc.cluster.local",
		DestinationServiceName:      "reviews",
		DestinationServiceNamespace: "default",
	}
}

// scrape fetches the Prometheus handler over a loopback server and parses it.
func scrape(t *testing.T, s *Stats) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	srv := httptest.NewServer(s.PrometheusHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	return fams, string(body)
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func TestIstioMetricsLabels(t *testing.T) {
	s := New(productpage)
	s.Record(outboundToReviews(200, 0))
	s.Record(outboundToReviews(200, 0))
	s.Record(outboundToReviews(503, streaminfo.NoHealthyUpstream))
	s.Record(&streaminfo.Info{Direction: "inbound", ResponseCode: 200, GRPCStatus: "0", Duration: 3 * time.Millisecond, BytesReceived: 20, BytesSent: 5})

	fams, body := scrape(t, s)
	req := fams["istio_requests_total"]
	if req == nil || req.GetType() != dto.MetricType_COUNTER {
		t.Fatalf("istio_requests_total missing or not a counter:\n%s", body)
	}
	if len(req.GetMetric()) != 3 {
		t.Fatalf("%d series, want 3", len(req.GetMetric()))
	}
	wantOK := map[string]string{
		"reporter":                       "source",
		"source_workload":                "productpage-v1",
		"source_workload_namespace":      "default",
		"source_principal":               "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
		"source_app":                     "productpage",
		"source_version":                 "v1",
		"source_cluster":                 "Kubernetes",
		"source_canonical_service":       "productpage",
		"source_canonical_revision":      "v1",
		"destination_workload":           "reviews-v1",
		"destination_workload_namespace": "default",
		"destination_principal":          "unknown",
		"destination_app":                "reviews",
		"destination_version":            "v1",
		"destination_service":            "reviews.default.svc.cluster.local",
		"destination_service_name":       "reviews",
		"destination_service_namespace":  "default",
		"destination_cluster":            "Kubernetes",
		"destination_canonical_service":  "reviews",
		"destination_canonical_revision": "v1",
		"request_protocol":               "http",
		"response_code":                  "200",
		"grpc_response_status":           "",
		"response_flags":                 "-",
		"connection_security_policy":     "unknown",
	}
	found := map[string]float64{}
	for _, m := range req.GetMetric() {
		l := labelsOf(m)
		if len(l) != len(LabelNames) {
			t.Errorf("series has %d labels, want %d: %v", len(l), len(LabelNames), l)
		}
		key := l["reporter"] + "/" + l["response_code"] + "/" + l["response_flags"]
		found[key] = m.GetCounter().GetValue()
		if key == "source/200/-" {
			for k, v := range wantOK {
				if l[k] != v {
					t.Errorf("%s = %q, want %q", k, l[k], v)
				}
			}
		}
		if l["reporter"] == "destination" {
			if l["destination_workload"] != "productpage-v1" || l["source_workload"] != "unknown" ||
				l["request_protocol"] != "grpc" || l["grpc_response_status"] != "0" ||
				l["connection_security_policy"] != "none" || l["source_canonical_revision"] != "latest" {
				t.Errorf("inbound labels wrong: %v", l)
			}
		}
	}
	want := map[string]float64{"source/200/-": 2, "source/503/UH": 1, "destination/200/-": 1}
	for k, v := range want {
		if found[k] != v {
			t.Errorf("istio_requests_total{%s} = %v, want %v (all: %v)", k, found[k], v, found)
		}
	}

	dur := fams["istio_request_duration_milliseconds"]
	if dur == nil || dur.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("duration histogram missing")
	}
	for _, m := range dur.GetMetric() {
		h := m.GetHistogram()
		if len(h.GetBucket()) != len(Buckets)+1 { // + the +Inf bucket
			t.Errorf("%d buckets, want %d", len(h.GetBucket()), len(Buckets)+1)
		}
		if labelsOf(m)["response_code"] == "200" && labelsOf(m)["reporter"] == "source" {
			if h.GetSampleCount() != 2 || h.GetSampleSum() != 24 {
				t.Errorf("duration count/sum = %d/%v, want 2/24", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	for _, name := range []string{"istio_request_bytes", "istio_response_bytes"} {
		if fams[name].GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s missing", name)
		}
	}
	if !strings.Contains(body, `istio_response_bytes_sum{connection_security_policy="unknown"`) {
		t.Errorf("response bytes series not in output")
	}
}

func clusterCounters(emit func(string, uint64)) {
	emit("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_total", 3)
	emit("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_retry", 0)
	emit("cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_total", 7)
	emit("cluster.inbound|9080||.upstream_cx_total", 1)
	emit("cluster.outbound|9080||reviews.default.svc.cluster.local.circuit_breakers.default.cx_open", 0)
	emit("server.total_connections", 5)
}

func clusterGauges(emit func(string, uint64)) {
	emit("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_active", 2)
	emit("listener.127.0.1.1_15001.downstream_cx_active", 4)
}

func TestWriteText(t *testing.T) {
	s := New(productpage)
	s.AddCounters(clusterCounters)
	s.AddGauges(clusterGauges)
	tests := []struct {
		name     string
		filter   string
		usedOnly bool
		want     string
	}{
		{"all", "", false, `cluster.inbound|9080||.upstream_cx_total: 1
cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_total: 7
cluster.outbound|9080||reviews.default.svc.cluster.local.circuit_breakers.default.cx_open: 0
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_active: 2
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_total: 3
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_retry: 0
listener.127.0.1.1_15001.downstream_cx_active: 4
server.total_connections: 5
`},
		{"usedonly", "", true, `cluster.inbound|9080||.upstream_cx_total: 1
cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_total: 7
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_active: 2
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_total: 3
listener.127.0.1.1_15001.downstream_cx_active: 4
server.total_connections: 5
`},
		{"filter", `upstream_cx_(total|active)$`, false, `cluster.inbound|9080||.upstream_cx_total: 1
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_active: 2
cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_total: 3
`},
		{"filter and usedonly", `retry`, true, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var re *regexp.Regexp
			if tc.filter != "" {
				re = regexp.MustCompile(tc.filter)
			}
			var buf bytes.Buffer
			if err := s.WriteText(&buf, re, tc.usedOnly); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", buf.String(), tc.want)
			}
		})
	}

	var buf bytes.Buffer
	if err := s.WriteJSON(&buf, regexp.MustCompile(`^server\.`), false); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != `{"stats":[{"name":"server.total_connections","value":5}]}`+"\n" {
		t.Errorf("json = %s", got)
	}
	buf.Reset()
	if err := s.WriteJSON(&buf, regexp.MustCompile(`nothing`), false); err != nil {
		t.Fatal(err)
	}
	var v struct{ Stats []Stat }
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil || v.Stats == nil || len(v.Stats) != 0 {
		t.Errorf("empty json = %s (%v)", buf.String(), err)
	}
}

func TestEnvoyStatsInPrometheus(t *testing.T) {
	s := New(productpage)
	s.AddCounters(clusterCounters)
	s.AddGauges(clusterGauges)
	_, body := scrape(t, s)
	for _, want := range []string{
		"# TYPE envoy_cluster_upstream_cx_total counter\n",
		`envoy_cluster_upstream_cx_total{cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 3` + "\n",
		`envoy_cluster_upstream_cx_total{cluster_name="inbound|9080||"} 1` + "\n",
		`envoy_cluster_upstream_rq_total{cluster_name="outbound|9080|v1|reviews.default.svc.cluster.local"} 7` + "\n",
		`envoy_cluster_upstream_rq_retry{cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 0` + "\n",
		`envoy_cluster_circuit_breakers_default_cx_open{cluster_name="outbound|9080||reviews.default.svc.cluster.local"} 0` + "\n",
		"# TYPE envoy_cluster_upstream_cx_active gauge\n",
		`envoy_listener_downstream_cx_active{listener_address="127.0.1.1_15001"} 4` + "\n",
		"envoy_server_total_connections 5\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q\n%s", want, body)
		}
	}
}

func TestPrometheusName(t *testing.T) {
	tests := []struct{ in, name, label, value string }{
		{"cluster.outbound|80||a.b.svc.cluster.local.upstream_rq_total", "envoy_cluster_upstream_rq_total", "cluster_name", "outbound|80||a.b.svc.cluster.local"},
		{"cluster.BlackHoleCluster.upstream_cx_total", "envoy_cluster_upstream_cx_total", "cluster_name", "BlackHoleCluster"},
		{"cluster.x.outlier_detection.ejections_active", "envoy_cluster_outlier_detection_ejections_active", "cluster_name", "x"},
		{"listener.0.0.0.0_15006.downstream_cx_total", "envoy_listener_downstream_cx_total", "listener_address", "0.0.0.0_15006"},
		{"server.uptime", "envoy_server_uptime", "", ""},
		{"cluster_manager.active_clusters", "envoy_cluster_manager_active_clusters", "", ""},
		{"cluster.", "envoy_cluster_", "", ""},
	}
	for _, tc := range tests {
		n, l, v := PrometheusName(tc.in)
		if n != tc.name || l != tc.label || v != tc.value {
			t.Errorf("PrometheusName(%q) = %q %q %q, want %q %q %q", tc.in, n, l, v, tc.name, tc.label, tc.value)
		}
	}
}

var validName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

func FuzzPrometheusName(f *testing.F) {
	f.Add("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total")
	f.Add("listener.0.0.0.0_80.x")
	f.Add("cluster..")
	f.Fuzz(func(t *testing.T, stat string) {
		n, l, v := PrometheusName(stat)
		if !validName.MatchString(n) {
			t.Fatalf("invalid metric name %q from %q", n, stat)
		}
		if (l == "") != (v == "") && l == "" {
			t.Fatalf("value %q without label", v)
		}
	})
}

func TestRecordCachedAllocs(t *testing.T) {
	s := New(productpage)
	in := outboundToReviews(200, 0)
	s.Record(in)
	if n := testing.AllocsPerRun(200, func() { s.Record(in) }); n != 0 {
		t.Errorf("Record allocates %v times per request on a cached label set", n)
	}
}

func TestConcurrentRecordAndScrape(t *testing.T) {
	s := New(productpage)
	s.AddCounters(clusterCounters)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 250 {
				s.Record(outboundToReviews(200+(i+j)%3, 0))
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := s.WriteText(io.Discard, nil, false); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	fams, _ := scrape(t, s)
	var total float64
	for _, m := range fams["istio_requests_total"].GetMetric() {
		total += m.GetCounter().GetValue()
	}
	if total != 1000 {
		t.Errorf("total requests = %v, want 1000", total)
	}
}

func BenchmarkRecord(b *testing.B) {
	s := New(productpage)
	in := outboundToReviews(200, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Record(in)
		}
	})
}

// Label sets that alternate from request to request are each counted under their own
// labels, and switching between cached sets allocates nothing.
func TestAlternatingLabelSets(t *testing.T) {
	s := New(productpage)
	ok, notFound := outboundToReviews(200, 0), outboundToReviews(404, 0)
	for _, in := range []*streaminfo.Info{ok, notFound, ok, ok, notFound} {
		s.Record(in)
	}
	got := requestsBy(t, s, "response_code")
	if got["200"] != 3 || got["404"] != 2 || len(got) != 2 {
		t.Fatalf("istio_requests_total by response_code = %v, want 200: 3, 404: 2", got)
	}
	if n := testing.AllocsPerRun(200, func() { s.Record(ok); s.Record(notFound) }); n != 0 {
		t.Errorf("Record allocates %v times switching between cached label sets", n)
	}
}

// A label set counts in one series whether its values are the strings the series was
// made from or equal strings elsewhere in memory (a configuration pushed again), and a
// value that differs in its bytes only, at the same length, counts apart.
func TestSameLabelsFromOtherStrings(t *testing.T) {
	s := New(productpage)
	first := outboundToReviews(200, 0)
	again := outboundToReviews(200, 0)
	again.DestinationService = strings.Clone(first.DestinationService)
	again.Destination.Workload = strings.Clone(first.Destination.Workload)
	other := outboundToReviews(200, 0)
	other.Destination.Workload = "reviews-v2" // as long as reviews-v1
	for _, in := range []*streaminfo.Info{first, first, again, first, other, again} {
		s.Record(in)
	}
	got := requestsBy(t, s, "destination_workload")
	if got["reviews-v1"] != 5 || got["reviews-v2"] != 1 || len(got) != 2 {
		t.Fatalf("istio_requests_total by destination_workload: %v; want reviews-v1 5, reviews-v2 1", got)
	}
}

// requestsBy is istio_requests_total's count for each value of label.
func requestsBy(t *testing.T, s *Stats, label string) map[string]float64 {
	t.Helper()
	fams, _ := scrape(t, s)
	got := map[string]float64{}
	for _, m := range fams["istio_requests_total"].GetMetric() {
		got[labelsOf(m)[label]] += m.GetCounter().GetValue()
	}
	return got
}

// A gRPC status read from an answer is labelled with the package's own string for its
// code, wherever the answer's bytes were; anything else is kept as it came.
func TestGRPCStatusLabelIsTheOwnString(t *testing.T) {
	for _, s := range []string{"0", "14", "16"} {
		got := grpcStatus(strings.Clone(s))
		if got != s || unsafe.StringData(got) != unsafe.StringData(grpcStatus(s)) {
			t.Errorf("grpcStatus(%q) is not the package's own string", s)
		}
	}
	for _, s := range []string{"", "17", "014", "+1", "x"} {
		if in := strings.Clone(s); grpcStatus(in) != s || len(s) > 0 && unsafe.StringData(grpcStatus(in)) != unsafe.StringData(in) {
			t.Errorf("grpcStatus(%q) changed it", s)
		}
	}
}
