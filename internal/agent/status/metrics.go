package status

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// PrometheusAnnotationsEnv holds the app's original prometheus.io/{scrape,path,port}
// annotations, which Istio's injector moves there when it points the pod's scrape at
// the status server.
const PrometheusAnnotationsEnv = "ISTIO_PROMETHEUS_ANNOTATIONS"

// AppScrape is where the app's own metrics are scraped.
type AppScrape struct {
	URL string // http://<app address>:<port><path>
}

// reservedPorts are Istio's own ports; the app's metrics cannot be on one of them.
var reservedPorts = map[int]string{15000: "admin", 15001: "outbound capture", 15004: "pilot debug", 15006: "inbound capture",
	15008: "HBONE", 15020: "status server", 15021: "health", 15053: "DNS proxy", 15090: "Envoy Prometheus"}

// ParsePrometheusAnnotations reads ISTIO_PROMETHEUS_ANNOTATIONS
// ({"scrape":"true","path":"/metrics","port":"8080"}); host is the app's address. It
// returns nil when the value is empty or scrape is "false". Defaults are Istio's: path
// /metrics, port 80.
func ParsePrometheusAnnotations(s, host string, statusPort uint16) (*AppScrape, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var a struct {
		Scrape string `json:"scrape"`
		Path   string `json:"path"`
		Port   string `json:"port"`
	}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("%s: %w", PrometheusAnnotationsEnv, err)
	}
	if strings.EqualFold(a.Scrape, "false") {
		return nil, nil
	}
	if a.Path == "" {
		a.Path = "/metrics"
	}
	if !strings.HasPrefix(a.Path, "/") {
		a.Path = "/" + a.Path
	}
	port := 80
	if a.Port != "" {
		p, err := strconv.Atoi(a.Port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%s: port: %q is not a port number", PrometheusAnnotationsEnv, a.Port)
		}
		port = p
	}
	if port == int(statusPort) {
		return nil, fmt.Errorf("%s: port: the app's metrics cannot be on the status port %d", PrometheusAnnotationsEnv, port)
	}
	if what, ok := reservedPorts[port]; ok {
		return nil, fmt.Errorf("%s: port: %d is Istio's reserved port (%s)", PrometheusAnnotationsEnv, port, what)
	}
	return &AppScrape{URL: "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + a.Path}, nil
}

// merger serves /stats/prometheus: the sidecar's metrics, then the app's. A part that
// fails is left out, logged and counted; the scrape itself never fails.
type merger struct {
	own      prometheus.Gatherer
	app      *AppScrape
	client   *http.Client
	log      *slog.Logger
	failures *prometheus.CounterVec
	scrapes  prometheus.Counter
}

func newMerger(own prometheus.Gatherer, app *AppScrape, reg prometheus.Registerer, log *slog.Logger) (*merger, error) {
	m := &merger{own: own, app: app, log: log,
		client: &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_agent_scrape_failures_total",
			Help: "Parts of a merged /stats/prometheus scrape that failed, by type (sidecar, application).",
		}, []string{"type"}),
		scrapes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "istio_agent_scrapes_total", Help: "Merged /stats/prometheus scrapes served.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.failures, m.scrapes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register scrape metrics: %w", err)
			}
		}
	}
	return m, nil
}

// textFormat is the Prometheus text exposition format 0.0.4.
const textFormat = "text/plain; version=0.0.4; charset=utf-8"

func (m *merger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.scrapes.Inc()
	var out bytes.Buffer
	if m.own != nil {
		mfs, err := m.own.Gather()
		if err != nil {
			m.failures.WithLabelValues("sidecar").Inc()
			m.log.Warn("sidecar metrics partly failed", "error", err)
		}
		enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				m.failures.WithLabelValues("sidecar").Inc()
				m.log.Warn("sidecar metric not encoded", "metric", mf.GetName(), "error", err)
			}
		}
	}
	if m.app != nil {
		body, err := m.scrapeApp(r)
		if err != nil {
			m.failures.WithLabelValues("application").Inc()
			m.log.Warn("app metrics scrape failed; serving the sidecar's metrics only", "url", m.app.URL, "error", err)
		} else {
			if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
				out.WriteByte('\n')
			}
			out.Write(body)
		}
	}
	w.Header().Set("Content-Type", textFormat)
	_, _ = w.Write(out.Bytes())
}

func (m *merger) scrapeApp(r *http.Request) ([]byte, error) {
	timeout := 5 * time.Second
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
			timeout = time.Duration(f * float64(time.Second))
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.app.URL, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"User-Agent", "X-Prometheus-Scrape-Timeout-Seconds"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the app answered %d", resp.StatusCode)
	}
	return body, nil
}
