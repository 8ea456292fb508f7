package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const reviews = "outbound|9080||reviews.default.svc.cluster.local"

func sampleClusters() []ClusterStatus {
	return []ClusterStatus{
		{
			Name: reviews, EDSServiceName: reviews, AddedViaAPI: true,
			MaxConnections: 4294967295, MaxPendingRequests: 4294967295, MaxRequests: 4294967295, MaxRetries: 4294967295,
			Hosts: []HostStatus{
				{
					Address: "127.0.1.2:9080", Hostname: "reviews-v1",
					Stats:     map[string]uint64{"cx_total": 3, "cx_active": 1, "rq_total": 10, "rq_success": 9, "rq_error": 1},
					EDSHealth: "HEALTHY", Weight: 1, Region: "us-east1", Zone: "us-east1-b",
					Labels: map[string]string{"app": "reviews", "version": "v1"},
					Idle: &IdleTimeout{Timeout: 5 * time.Second, Description: "5s (learned from 3 upstream closes)", Closes: 3,
						ReuseLimit: 4480 * time.Millisecond},
				},
				{
					Address: "127.0.1.3:9080", Stats: map[string]uint64{"cx_connect_fail": 2},
					HealthFlags: []string{"/failed_outlier_check", "/failed_eds_health"}, EDSHealth: "UNHEALTHY", Weight: 1,
				},
			},
		},
		{Name: "BlackHoleCluster", MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 3},
	}
}

type fixture struct {
	srv    *httptest.Server
	logs   *logging.Registry
	logBuf *bytes.Buffer
	quits  atomic.Int32
	state  atomic.Value
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{logBuf: &bytes.Buffer{}}
	f.state.Store("LIVE")
	f.logs = logging.NewRegistry(f.logBuf, logging.Warning, false)
	st := stats.New(streaminfo.Peer{Workload: "productpage-v1", Namespace: "default"})
	st.AddCounters(func(emit func(string, uint64)) {
		emit("cluster."+reviews+".upstream_cx_total", 3)
		emit("cluster."+reviews+".upstream_rq_retry", 0)
		emit("server.total_connections", 5)
	})
	st.Record(&streaminfo.Info{Direction: "outbound", ResponseCode: 200, DestinationService: "reviews.default.svc.cluster.local"})
	h := New(Options{
		ConfigDump: func(eds bool) ([]byte, error) {
			if eds {
				return []byte(`{"configs":["with-eds"]}`), nil
			}
			return []byte(`{"configs":[]}`), nil
		},
		Clusters: sampleClusters,
		Listeners: func() []ListenerStatus {
			return []ListenerStatus{{"virtualOutbound", "127.0.1.1:15001"}, {"127.0.1.1_9080", "127.0.1.1:9080"}}
		},
		Logging: f.logs,
		Stats:   st,
		State:   func() string { return f.state.Load().(string) },
		ServerInfo: func() ServerInfo {
			return ServerInfo{Version: "lucid/0.1.0", NodeID: "sidecar~127.0.1.1~productpage-v1.default~default.svc.cluster.local",
				Cluster: "productpage.default", Uptime: 123*time.Second + 400*time.Millisecond, Metadata: map[string]string{"NAMESPACE": "default"}}
		},
		Quit: func() { f.quits.Add(1) },
		Log:  f.logs.Logger("admin"),
	})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), []byte(got))
}

func TestClustersText(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "GET", "/clusters")
	if code != 200 {
		t.Fatalf("code %d", code)
	}
	golden(t, "clusters.txt", body)
	for _, want := range []string{
		reviews + "::default_priority::max_connections::4294967295\n",
		reviews + "::high_priority::max_retries::3\n",
		reviews + "::added_via_api::true\n",
		reviews + "::127.0.1.2:9080::cx_total::3\n",
		reviews + "::127.0.1.2:9080::rq_timeout::0\n",
		reviews + "::127.0.1.2:9080::health_flags::healthy\n",
		reviews + "::127.0.1.3:9080::health_flags::/failed_outlier_check/failed_eds_health\n",
		reviews + "::127.0.1.2:9080::region::us-east1\n",
		reviews + "::127.0.1.3:9080::sub_zone::\n",
		reviews + "::127.0.1.3:9080::success_rate::-1\n",
		reviews + "::127.0.1.2:9080::idle_timeout::5s (learned from 3 upstream closes)\n",
		reviews + "::127.0.1.2:9080::idle_reuse_limit::4.48s\n",
		"BlackHoleCluster::added_via_api::false\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing line %q", want)
		}
	}
	if strings.Index(body, "BlackHoleCluster::") > strings.Index(body, reviews+"::") {
		t.Error("clusters not sorted by name")
	}
}

func TestClustersJSON(t *testing.T) {
	f := newFixture(t)
	code, body, hdr := f.do(t, "GET", "/clusters?format=json")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("code %d, content type %q", code, hdr.Get("Content-Type"))
	}
	golden(t, "clusters.json", body)
	// Read it the way istioctl proxy-config endpoints does.
	var v struct {
		ClusterStatuses []struct {
			Name         string `json:"name"`
			HostStatuses []struct {
				Address struct {
					SocketAddress struct {
						Address   string `json:"address"`
						PortValue int    `json:"port_value"`
					} `json:"socket_address"`
				} `json:"address"`
				HealthStatus struct {
					EDSHealthStatus    string `json:"eds_health_status"`
					FailedOutlierCheck bool   `json:"failed_outlier_check"`
				} `json:"health_status"`
				Stats []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
					Type  string `json:"type"`
				} `json:"stats"`
			} `json:"host_statuses"`
		} `json:"cluster_statuses"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if len(v.ClusterStatuses) != 2 || v.ClusterStatuses[1].Name != reviews {
		t.Fatalf("clusters = %+v", v.ClusterStatuses)
	}
	hosts := v.ClusterStatuses[1].HostStatuses
	if len(hosts) != 2 {
		t.Fatalf("hosts = %d", len(hosts))
	}
	if a := hosts[0].Address.SocketAddress; a.Address != "127.0.1.2" || a.PortValue != 9080 {
		t.Errorf("address = %+v", a)
	}
	if h := hosts[0].HealthStatus; h.EDSHealthStatus != "HEALTHY" || h.FailedOutlierCheck {
		t.Errorf("host 0 health = %+v", h)
	}
	if h := hosts[1].HealthStatus; h.EDSHealthStatus != "UNHEALTHY" || !h.FailedOutlierCheck {
		t.Errorf("host 1 health = %+v", h)
	}
	if s := hosts[0].Stats[1]; s.Name != "cx_total" || s.Value != "3" || s.Type != "" {
		t.Errorf("stats[1] = %+v", s)
	}
	if s := hosts[0].Stats[6]; s.Name != "cx_active" || s.Type != "GAUGE" {
		t.Errorf("stats[6] = %+v", s)
	}
}

func TestLogging(t *testing.T) {
	f := newFixture(t)
	router := f.logs.Logger("router")

	code, body, _ := f.do(t, "GET", "/logging")
	if code != 200 || !strings.HasPrefix(body, "active loggers:\n  admin: warning\n  agent: warning\n") || !strings.HasSuffix(body, "  upstream: warning\n\n") {
		t.Fatalf("list: %d\n%s", code, body)
	}

	router.Debug("before")
	code, body, _ = f.do(t, "POST", "/logging?router=debug")
	if code != 200 || !strings.Contains(body, "  router: debug\n") || !strings.Contains(body, "  http: warning\n") {
		t.Fatalf("set router: %d\n%s", code, body)
	}
	router.Debug("after")
	if strings.Contains(f.logBuf.String(), "before") || !strings.Contains(f.logBuf.String(), "msg=after") {
		t.Errorf("debug records: %q", f.logBuf.String())
	}

	code, body, _ = f.do(t, "POST", "/logging?paths=http:trace,upstream:error")
	if code != 200 || !strings.Contains(body, "  http: trace\n") || !strings.Contains(body, "  upstream: error\n") {
		t.Fatalf("paths: %d\n%s", code, body)
	}
	code, body, _ = f.do(t, "POST", "/logging?level=info")
	if code != 200 || strings.Count(body, ": info\n") != len(f.logs.Levels()) {
		t.Fatalf("level: %d\n%s", code, body)
	}

	errs := []struct{ query, msg string }{
		{"level=loud", "unknown logger level"},
		{"nosuch=debug", "unknown logger name"},
		{"router=debug&http=info", "invalid number of parameters"},
		{"paths=router:debug,http", "empty logger name or empty logger level"},
		{"paths=router:debug,nosuch:info", "unknown logger name"},
	}
	for _, e := range errs {
		code, body, _ = f.do(t, "POST", "/logging?"+e.query)
		want := "error: " + e.msg + "\n\n" + loggingUsage + "active loggers:\n"
		if code != 400 || !strings.HasPrefix(body, want) {
			t.Errorf("%s: %d\n%s\nwant prefix\n%s", e.query, code, body, want)
		}
	}
	// A failed paths change leaves every level as it was.
	for _, nl := range f.logs.Levels() {
		if nl.Level != logging.Info {
			t.Errorf("%s = %s after failed changes", nl.Name, nl.Level)
		}
	}
	// The admin logger was at warning until level=info, so only that change is logged.
	if !strings.Contains(f.logBuf.String(), `level=info msg="change all log levels: level='info'" component=admin`) {
		t.Errorf("level change not logged: %q", f.logBuf.String())
	}

	code, body, _ = f.do(t, "GET", "/logging?level=debug")
	if code != 405 || body != "Method GET not allowed, POST required." {
		t.Errorf("GET change: %d %q", code, body)
	}
}

func TestStatsEndpoint(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/stats", 200, "cluster." + reviews + ".upstream_cx_total: 3\ncluster." + reviews + ".upstream_rq_retry: 0\nserver.total_connections: 5\n"},
		{"/stats?usedonly", 200, "cluster." + reviews + ".upstream_cx_total: 3\nserver.total_connections: 5\n"},
		{"/stats?filter=retry", 200, "cluster." + reviews + ".upstream_rq_retry: 0\n"},
		{"/stats?filter=retry&usedonly", 200, ""},
		{"/stats?format=json&filter=^server", 200, `{"stats":[{"name":"server.total_connections","value":5}]}` + "\n"},
		{"/stats?filter=(", 400, "Invalid re2 regex\n"},
	}
	for _, tc := range tests {
		code, body, _ := f.do(t, "GET", tc.path)
		if code != tc.code || body != tc.want {
			t.Errorf("%s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.want)
		}
	}
	for _, path := range []string{"/stats/prometheus", "/stats?format=prometheus"} {
		code, body, _ := f.do(t, "GET", path)
		if code != 200 || !strings.Contains(body, `envoy_cluster_upstream_cx_total{cluster_name="`+reviews+`"} 3`) ||
			!strings.Contains(body, `istio_requests_total{connection_security_policy="unknown",destination_app="unknown"`) {
			t.Errorf("%s: %d\n%s", path, code, body)
		}
	}
}

func TestReadyConfigDumpServerInfoListeners(t *testing.T) {
	f := newFixture(t)
	if code, body, _ := f.do(t, "GET", "/ready"); code != 200 || body != "LIVE\n" {
		t.Errorf("ready: %d %q", code, body)
	}
	f.state.Store("DRAINING")
	if code, body, _ := f.do(t, "GET", "/ready"); code != 503 || body != "DRAINING\n" {
		t.Errorf("draining: %d %q", code, body)
	}

	// The proxy's dump, with the (empty) secrets section istioctl needs added at the end.
	const secrets = "{\n      \"@type\": \"type.googleapis.com/envoy.admin.v3.SecretsConfigDump\"\n    }"
	if code, body, _ := f.do(t, "GET", "/config_dump"); code != 200 || body != "{\n  \"configs\": [\n    "+secrets+"\n  ]\n}\n" {
		t.Errorf("config_dump: %d %q", code, body)
	}
	if _, body, _ := f.do(t, "GET", "/config_dump?include_eds"); body != "{\n  \"configs\": [\n    \"with-eds\",\n    "+secrets+"\n  ]\n}\n" {
		t.Errorf("config_dump?include_eds: %q", body)
	}

	_, body, _ := f.do(t, "GET", "/server_info")
	var si map[string]any
	if err := json.Unmarshal([]byte(body), &si); err != nil {
		t.Fatal(err)
	}
	node, _ := si["node"].(map[string]any)
	if si["version"] != "lucid/0.1.0" || si["state"] != "DRAINING" || si["uptime_current_epoch"] != "123s" ||
		node["id"] != "sidecar~127.0.1.1~productpage-v1.default~default.svc.cluster.local" || node["cluster"] != "productpage.default" {
		t.Errorf("server_info = %s", body)
	}
	if _, ok := si["command_line_options"].(map[string]any); !ok {
		t.Errorf("command_line_options missing: %s", body)
	}

	if _, body, _ := f.do(t, "GET", "/listeners"); body != "virtualOutbound::127.0.1.1:15001\n127.0.1.1_9080::127.0.1.1:9080\n" {
		t.Errorf("listeners: %q", body)
	}
	_, body, _ = f.do(t, "GET", "/listeners?format=json")
	if !strings.Contains(body, `"name": "virtualOutbound"`) || !strings.Contains(body, `"port_value": 15001`) {
		t.Errorf("listeners json: %s", body)
	}
}

func TestQuitAndUnknownPath(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "GET", "/quitquitquit")
	if code != 405 || body != "Method GET not allowed, POST required." || f.quits.Load() != 0 {
		t.Errorf("GET quit: %d %q quits=%d", code, body, f.quits.Load())
	}
	code, body, _ = f.do(t, "POST", "/quitquitquit")
	if code != 200 || body != "OK\n" || f.quits.Load() != 1 {
		t.Errorf("POST quit: %d %q quits=%d", code, body, f.quits.Load())
	}
	code, body, _ = f.do(t, "GET", "/nope")
	if code != 404 || !strings.HasPrefix(body, "invalid path. admin commands are:\n") || !strings.Contains(body, "  /clusters: upstream cluster status\n") {
		t.Errorf("unknown path: %d %q", code, body)
	}
	if code, body, _ := f.do(t, "GET", "/help"); code != 200 || !strings.Contains(body, "  /logging: query/change logging levels\n") {
		t.Errorf("help: %d %q", code, body)
	}
}

func TestUnavailable(t *testing.T) {
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	for _, p := range []string{"/clusters", "/config_dump", "/logging", "/stats", "/listeners"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("%s without a source: %d", p, resp.StatusCode)
		}
	}
}

func TestParseLoggingQuery(t *testing.T) {
	tests := []struct {
		raw     string
		wantErr error
		all     bool
		n       int
	}{
		{"", nil, false, -1},
		{"&&", nil, false, -1},
		{"level=warn", nil, true, 0},
		{"router=trace", nil, false, 1},
		{"router=debug&router=info", nil, false, 1},
		{"paths=a:debug,%20,b:info", nil, false, 2},
		{"paths=", nil, false, 0},
		{"paths=a", errEmptyPath, false, 0},
		{"paths=:debug", errEmptyPath, false, 0},
		{"paths=a:loud", errUnknownLevel, false, 0},
		{"level=", errUnknownLevel, false, 0},
		{"a=debug&b=debug", errParamCount, false, 0},
	}
	for _, tc := range tests {
		c, err := parseLoggingQuery(tc.raw)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%q: err %v, want %v", tc.raw, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if tc.n < 0 {
			if c != nil {
				t.Errorf("%q: want no change, got %+v", tc.raw, c)
			}
			continue
		}
		if c.all != tc.all || len(c.changes) != tc.n {
			t.Errorf("%q: got %+v", tc.raw, c)
		}
	}
}

func FuzzParseLoggingQuery(f *testing.F) {
	for _, s := range []string{"", "level=debug", "paths=a:b,c:d", "router=info&x", "%zz=debug", "paths=,,:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := parseLoggingQuery(raw)
		if err != nil {
			if c != nil {
				t.Fatal("change returned with an error")
			}
			return
		}
		if c == nil {
			return
		}
		for _, nl := range c.changes {
			if nl.Name == "" {
				t.Fatalf("%q: empty logger name accepted", raw)
			}
			if _, err := logging.ParseLevel(nl.Level.String()); err != nil {
				t.Fatalf("%q: level %v not a real level", raw, nl.Level)
			}
		}
	})
}
