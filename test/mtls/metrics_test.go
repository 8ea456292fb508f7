package mtls

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

const (
	clientID = "spiffe://cluster.local/ns/default/sa/client-sa"
	webID    = "spiffe://cluster.local/ns/default/sa/web-sa"
)

// scrape reads a sidecar's /stats/prometheus as Prometheus would and returns the series of
// family name whose labels include want; "" in want means the label must be absent or
// empty.
func scrape(t *testing.T, ip, name string, want map[string]string) []*dto.Metric {
	t.Helper()
	resp, err := http.Get("http://" + testutil.Admin(ip) + "/stats/prometheus")
	if err != nil {
		t.Fatalf("scrape %s: %v", ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("the exposition of %s does not parse: %v", ip, err)
	}
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		ok := true
		for k, v := range want {
			ok = ok && l[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// requestsSeen waits until the sidecar at ip counts at least n requests in series matching
// want and fails with the sidecar's whole exposition otherwise.
func requestsSeen(t *testing.T, ip string, n float64, want map[string]string) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "istio_requests_total on "+ip+" with "+labelString(want), func() bool {
		var sum float64
		for _, m := range scrape(t, ip, "istio_requests_total", want) {
			sum += m.GetCounter().GetValue()
		}
		return sum >= n
	})
}

func labelString(l map[string]string) string {
	var b strings.Builder
	for k, v := range l {
		b.WriteString(k + "=" + v + " ")
	}
	return b.String()
}

// Istio's connection_security_policy and principals: web's sidecar (the destination
// reporter) labels a mutual-TLS request mutual_tls with the caller's SPIFFE identity from
// its certificate and its own; the client's sidecar (the source reporter) says unknown,
// names the server from the certificate it presented and itself from the one it sent. A
// plaintext caller (PERMISSIVE) is none with no principal.
func TestMetricsConnectionSecurityPolicy(t *testing.T) {
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML}, meshtest.Options{})
	if code, _, _, body := get(t, m, "http://web.default.svc.cluster.local:8080/metrics"); code != 200 {
		t.Fatalf("through the mesh: %d %s", code, body)
	}
	requestsSeen(t, webIP, 1, map[string]string{
		"reporter": "destination", "connection_security_policy": "mutual_tls",
		"source_principal": clientID, "destination_principal": webID,
		"source_workload": "client", "destination_workload": "web", "response_code": "200",
	})
	requestsSeen(t, clientIP, 1, map[string]string{
		"reporter": "source", "connection_security_policy": "unknown",
		"source_principal": clientID, "destination_principal": webID, "destination_workload": "web", "response_code": "200",
	})
	if line, err := plaintext(t); err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("plaintext client under PERMISSIVE: %q %v", line, err)
	}
	requestsSeen(t, webIP, 1, map[string]string{
		"reporter": "destination", "connection_security_policy": "none",
		"source_principal": "unknown", "destination_principal": "unknown",
	})
	if got := scrape(t, webIP, "istio_requests_total", map[string]string{"connection_security_policy": "unknown", "reporter": "destination"}); len(got) != 0 {
		t.Errorf("the destination reporter says unknown on %d series; Istio's says mutual_tls or none", len(got))
	}
}

// The same labels on Istio's TCP metrics: an opaque TCP connection between the sidecars
// under STRICT opens under mutual_tls on web's side with both identities, and the client's
// side names both too.
func TestTCPMetricsConnectionSecurityPolicy(t *testing.T) {
	ws := append([]meshtest.Workload{}, workloads...)
	ws[0].Ports = []int{8080, 9000}
	m := meshtest.StartWith(t, meshtest.Options{MTLS: caAddr}, map[string]string{"mesh.yaml": tcpYAML, "strict.yaml": strictYAML}, ws)
	if line, err := overTunnel(t); err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("client → web:9000 (TCP) under STRICT: %q %v\n%s", line, err, m.Logs.String())
	}
	for _, c := range []struct {
		ip   string
		want map[string]string
	}{
		{webIP, map[string]string{"reporter": "destination", "connection_security_policy": "mutual_tls",
			"source_principal": clientID, "destination_principal": webID, "request_protocol": "tcp"}},
		{clientIP, map[string]string{"reporter": "source", "connection_security_policy": "unknown",
			"source_principal": clientID, "destination_principal": webID, "request_protocol": "tcp"}},
	} {
		testutil.Eventually(t, 5*time.Second, "istio_tcp_connections_opened_total on "+c.ip+" with "+labelString(c.want), func() bool {
			return len(scrape(t, c.ip, "istio_tcp_connections_opened_total", c.want)) == 1
		})
	}
}
