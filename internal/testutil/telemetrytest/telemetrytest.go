// Package telemetrytest starts the real telemetry backends Lucid's telemetry tests check
// against: an OpenTelemetry Collector (OTLP/gRPC and OTLP/HTTP receivers, spans written
// by its file exporter and read back here) and Prometheus (static scrape targets, queried
// through its HTTP API). Both are built by `make telemetry-bins` (scripts/telemetry-bins.sh)
// into a cache outside the repository. Tests only.
package telemetrytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Versions of the backends: test/telemetrybin/go.mod's (TestVersionsMatchModule keeps them
// equal); they name the cache directory.
const (
	CollectorVersion  = "v0.161.0"
	PrometheusVersion = "v0.316.0"
)

// BinDir is where scripts/telemetry-bins.sh puts the binaries: $LUCID_TELEMETRY_BIN, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/lucid/telemetry/<collector>-<prometheus>.
func BinDir() string {
	if d := os.Getenv("LUCID_TELEMETRY_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "lucid", "telemetry", CollectorVersion+"-"+PrometheusVersion)
}

// Require skips the test when the binary is missing, saying how to build it; under CI
// (env CI set) it fails instead, so CI never passes by skipping.
func Require(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(BinDir(), name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("%s not in %s: run `make telemetry-bins` (or set LUCID_TELEMETRY_BIN)", name, BinDir())
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run starts bin and stops it when the test ends, printing its output if the test failed.
// The channel is closed when the process exits.
func run(t testing.TB, bin string, args ...string) (*testutil.Buffer, <-chan struct{}) {
	t.Helper()
	var out testutil.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), tail(out.String(), 40))
		}
	})
	return &out, done
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t testing.TB, url string, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url) //nolint:gosec // a test's own loopback address
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready at %s within 30s", what, url)
}

// Collector is a running OpenTelemetry Collector.
type Collector struct {
	GRPCAddr string // OTLP/gRPC receiver, host:port
	HTTPURL  string // OTLP/HTTP traces endpoint, http://host:port/v1/traces
	file     string
}

// StartCollector starts a collector on ip (a loopback address) whose OTLP receivers write
// every span they accept to a file that Spans reads.
func StartCollector(t testing.TB, ip string) *Collector {
	t.Helper()
	bin := Require(t, "otelcol")
	dir := t.TempDir()
	c := &Collector{GRPCAddr: freeAddr(t, ip), file: filepath.Join(dir, "spans.jsonl")}
	httpAddr := freeAddr(t, ip)
	c.HTTPURL = "http://" + httpAddr + "/v1/traces"
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
exporters:
  file: {path: %q, flush_interval: 100ms}
service:
  telemetry:
    metrics: {level: none}
    logs: {level: warn}
  pipelines:
    traces: {receivers: [otlp], exporters: [file]}
`, c.GRPCAddr, httpAddr, c.file)
	cfgPath := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, exited := run(t, bin, "--config", cfgPath)
	// Ready when both receivers accept connections.
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range []string{c.GRPCAddr, httpAddr} {
		for {
			conn, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("collector exited:\n%s", tail(out.String(), 30))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("collector not listening on %s within 30s:\n%s", a, tail(out.String(), 30))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Span is one span as the collector stored it.
type Span struct {
	Service      string // the resource's service.name
	TraceID      string
	SpanID       string
	ParentSpanID string
	Name         string
	Kind         int // OTLP: 2 server, 3 client
	Attrs        map[string]string
	Error        bool
}

// Spans reads every span the collector has written so far.
func (c *Collector) Spans(t testing.TB) []Span {
	t.Helper()
	f, err := os.Open(c.file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Span
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// The exporter may be half-way through writing a line: only complete lines count.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var doc struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []kv `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []struct {
						TraceID      string `json:"traceId"`
						SpanID       string `json:"spanId"`
						ParentSpanID string `json:"parentSpanId"`
						Name         string `json:"name"`
						Kind         int    `json:"kind"`
						Attributes   []kv   `json:"attributes"`
						Status       struct {
							Code int `json:"code"`
						} `json:"status"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("collector file: %v", err)
		}
		for _, rs := range doc.ResourceSpans {
			svc := attrMap(rs.Resource.Attributes)["service.name"]
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, Span{Service: svc, TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID,
						Name: s.Name, Kind: s.Kind, Attrs: attrMap(s.Attributes), Error: s.Status.Code == 2})
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// InTrace returns the spans of one trace (its id in hex).
func InTrace(spans []Span, traceID string) []Span {
	var out []Span
	for _, s := range spans {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// WaitSpans polls Spans until cond holds (the file exporter flushes every 100 ms).
func (c *Collector) WaitSpans(t testing.TB, within time.Duration, cond func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := c.Spans(t)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector: condition not met within %v; %d spans: %+v", within, len(s), s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type kv struct {
	Key   string `json:"key"`
	Value struct {
		StringValue string `json:"stringValue"`
		IntValue    string `json:"intValue"`
		BoolValue   *bool  `json:"boolValue"`
	} `json:"value"`
}

func attrMap(kvs []kv) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, a := range kvs {
		v := a.Value.StringValue
		if a.Value.IntValue != "" {
			v = a.Value.IntValue
		}
		if a.Value.BoolValue != nil {
			v = strconv.FormatBool(*a.Value.BoolValue)
		}
		m[a.Key] = v
	}
	return m
}

// Prometheus is a running Prometheus server.
type Prometheus struct {
	URL string // http://host:port
}

// StartPrometheus starts Prometheus on ip scraping the given targets (host:port, path
// metricsPath) every interval.
func StartPrometheus(t testing.TB, ip string, targets []string, metricsPath string, interval time.Duration) *Prometheus {
	t.Helper()
	bin := Require(t, "prometheus")
	dir := t.TempDir()
	addr := freeAddr(t, ip)
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: %s
  evaluation_interval: %s
scrape_configs:
  - job_name: envoy-stats
    metrics_path: %s
    static_configs:
      - targets: [%s]
`, interval, interval, metricsPath, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _ = run(t, bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p := &Prometheus{URL: "http://" + addr}
	waitHTTP(t, p.URL+"/-/ready", "prometheus")
	return p
}

// Sample is one element of an instant query's vector result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query.
func (p *Prometheus) Query(ctx context.Context, q string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus %q: %s", q, body.Error)
	}
	out := make([]Sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus %q: value %v: %w", q, r.Value[1], err)
		}
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}
