package mtls

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// tcpLogMeshConfig defines the file provider "tcplog" writing to path.
func tcpLogMeshConfig(path string) string {
	return "extensionProviders:\n- name: tcplog\n  envoyFileAccessLog: {path: " + path + "}\n"
}

// tcpLogTelemetry logs, mesh-wide, the mutual-TLS connections to port 9000: web's
// sidecar accepts the client's sidecar's connection over mTLS (logged); the client's
// sidecar gets the app's plaintext tunnel on 15001 (not logged). And HTTP requests to
// /mtls-http that came over mutual TLS: the same attribute on a request.
const tcpLogTelemetry = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: tcplog}]
    filter: {expression: "connection.mtls && (destination.port == 9000 || request.url_path == '/mtls-http')"}
`

// tcpLogWorkloads turns logging off on web and gives the client a filter of its own
// (the provider inherited from the mesh's entry).
const tcpLogWorkloads = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  accessLogging: [{disabled: true}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: client, namespace: default}
spec:
  selector: {matchLabels: {app: client}}
  accessLogging:
  - filter: {expression: "!connection.mtls && xds.cluster_name.startsWith('outbound|9000||web.')"}
`

// The Telemetry API's access logging applies to opaque TCP connections as Istio's does:
// one line per connection of a tcp_proxy chain, written where the provider says when the
// chain's CEL filter (over the connection's attributes) matches. Then workload-scoped
// Telemetry resources turn it off on web and give the client's side its own filter.
func TestTelemetryAccessLogsTCPConnections(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "tcp.log")
	ws := append([]meshtest.Workload{}, workloads...)
	ws[0].Ports = []int{8080, 9000}
	m := meshtest.StartWith(t, meshtest.Options{MTLS: caAddr, MeshConfig: tcpLogMeshConfig(logPath)},
		map[string]string{"mesh.yaml": tcpYAML, "telemetry.yaml": tcpLogTelemetry}, ws)
	defer func() {
		if t.Failed() {
			t.Log(m.Logs.String())
		}
	}()
	lines := func() []string {
		b, _ := os.ReadFile(logPath)
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	count := func(cluster string) int {
		n := 0
		for _, l := range lines() {
			if strings.Contains(l, cluster) {
				n++
			}
		}
		return n
	}
	connect := func() {
		t.Helper()
		if line, err := overTunnel(t); err != nil || line != "HTTP/1.1 200 OK" {
			t.Fatalf("client → web:9000 (TCP): %q %v", line, err)
		}
	}
	const inbound, outbound = "inbound|9000||", "outbound|9000||web.default.svc.cluster.local"

	// The mesh-wide filter: web's side of the connection (mutual TLS, port 9000) is
	// logged, as Istio's TCP line (no method, no status); the client's side is not.
	connect()
	testutil.Eventually(t, 5*time.Second, "web's line for the TCP connection", func() bool { return count(inbound) == 1 })
	if l := lines()[0]; !strings.Contains(l, `"- - -" 0 - `) || !strings.Contains(l, webApp+":9000") {
		t.Errorf("web's line %q: want Istio's TCP line (no method or status) to the app on 9000", l)
	}
	if code, _, _, body := get(t, m, "http://web.default.svc.cluster.local:8080/mtls-http"); code != 200 {
		t.Fatalf("GET /mtls-http: %d %s", code, body)
	}
	testutil.Eventually(t, 5*time.Second, "web's line for the request over mutual TLS", func() bool { return count(`"GET /mtls-http HTTP/1.1" 200`) == 1 })

	// Workload scope: off on web (its listeners log to /dev/null), the client's own
	// filter matches its plaintext side.
	m.WriteFile("telemetry-workloads.yaml", tcpLogWorkloads)
	testutil.Eventually(t, 10*time.Second, "web's configuration with logging off", func() bool {
		return strings.Contains(configDump(t, webIP), "/dev/null")
	})
	testutil.EventuallyWhy(t, 10*time.Second, "the client's line under its own filter", func() (bool, string) {
		connect()
		return count(outbound) > 0, strings.Join(lines(), "\n")
	})
	// A connection's line is written when it closes, after connect has returned: the
	// loop above may have left lines still to come, so count from a settled file.
	settled(t, lines)
	before := count(outbound)
	connect() // web's line of the connections above, had it logged, is written by now
	testutil.Eventually(t, 5*time.Second, "the client's line of one more connection", func() bool { return count(outbound) == before+1 })
	l := settled(t, lines)
	in, out := 0, 0
	for _, line := range l {
		switch {
		case strings.Contains(line, inbound):
			in++
		case strings.Contains(line, outbound):
			out++
		}
	}
	if in != 1 {
		t.Errorf("web logged %d connections; want only the first (logging is off there since):\n%s", in, strings.Join(l, "\n"))
	}
	if out != before+1 || len(l) != in+out+1 {
		t.Errorf("log has lines of other connections (want the client's %d, web's first and the request):\n%s", before+1, strings.Join(l, "\n"))
	}
}

// settled waits until the log has stopped growing (the same lines on reads 300 ms
// apart) and returns those lines.
func settled(t *testing.T, lines func() []string) []string {
	t.Helper()
	prev := lines()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		cur := lines()
		if len(cur) == len(prev) {
			return cur
		}
		prev = cur
	}
	t.Fatalf("the access log kept growing for 5 s:\n%s", strings.Join(prev, "\n"))
	return nil
}

// configDump is the proxy's /config_dump.
func configDump(t *testing.T, ip string) string {
	t.Helper()
	resp, err := http.Get("http://" + testutil.Admin(ip) + "/config_dump")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// A provider's own logFormat (text, and JSON labels) is what the proxies write, for a
// request and for a TCP connection alike.
func TestTelemetryAccessLogFormat(t *testing.T) {
	dir := t.TempDir()
	textLog, jsonLog := filepath.Join(dir, "text.log"), filepath.Join(dir, "json.log")
	meshConfig := "extensionProviders:\n" +
		"- name: text\n  envoyFileAccessLog: {path: " + textLog + ", logFormat: {text: \"%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %UPSTREAM_CLUSTER% %REQ(X-USER?USER-AGENT)%\"}}\n" +
		"- name: json\n  envoyFileAccessLog: {path: " + jsonLog + ", logFormat: {labels: {code: \"%RESPONSE_CODE%\", cluster: \"%UPSTREAM_CLUSTER%\", user: \"%REQ(X-USER)%\"}}}\n"
	const telemetry = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: text}, {name: json}]
    filter: {expression: "xds.cluster_name.startsWith('inbound')"}
`
	ws := append([]meshtest.Workload{}, workloads...)
	ws[0].Ports = []int{8080, 9000}
	m := meshtest.StartWith(t, meshtest.Options{MTLS: caAddr, MeshConfig: meshConfig},
		map[string]string{"mesh.yaml": tcpYAML, "telemetry.yaml": telemetry}, ws)
	defer func() {
		if t.Failed() {
			t.Log(m.Logs.String())
		}
	}()
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }

	req, _ := http.NewRequest(http.MethodGet, "http://web.default.svc.cluster.local:8080/fmt", nil)
	req.Header.Set("X-User", "jason")
	resp, err := m.Client(clientIP).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.Eventually(t, 5*time.Second, "the request's lines", func() bool { return read(jsonLog) != "" })
	if line, err := overTunnel(t); err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("client → web:9000 (TCP): %q %v", line, err)
	}
	// Each file is flushed on its own, so wait for both.
	testutil.Eventually(t, 5*time.Second, "the connection's lines", func() bool {
		return strings.Count(read(jsonLog), "\n") == 2 && strings.Count(read(textLog), "\n") == 2
	})
	if got, want := read(textLog), "GET /fmt 200 inbound|8080|| jason\n- - 0 inbound|9000|| -\n"; got != want {
		t.Errorf("text provider wrote\n%s\nwant\n%s", got, want)
	}
	if got, want := read(jsonLog), `{"cluster":"inbound|8080||","code":200,"user":"jason"}`+"\n"+`{"cluster":"inbound|9000||","code":0,"user":null}`+"\n"; got != want {
		t.Errorf("JSON provider wrote\n%s\nwant\n%s", got, want)
	}
}
