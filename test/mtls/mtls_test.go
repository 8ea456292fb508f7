// Package mtls tests mutual TLS between sidecars on a real mesh in the test process: the
// control plane with its CA, sidecars that get their workload certificates over gRPC, and
// apps, on 127.0.163.0/24. It asserts what a user sees: the app's answer, the status and
// the x-lucid-error of a refused request, a closed connection and the sidecar's log.
package mtls

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/cli"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// lucidEnv makes the test binary run as `lucid` (TestMain): `lucid up` and its children in
// TestUpTrustDomainNetns are this binary's processes.
const lucidEnv = "LUCID_MTLS_AS_LUCID"

func TestMain(m *testing.M) {
	if os.Getenv(lucidEnv) == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// The mesh's addresses.
const (
	caAddr    = "127.0.163.100:15012"
	webIP     = "127.0.163.2" // web's sidecar (inbound :8080)
	webApp    = "127.0.163.3"
	clientIP  = "127.0.163.4" // a client workload's sidecar
	webInPort = "8080"
)

const meshYAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, annotations: {lucid.dev/app-address: 127.0.163.3}}
spec: {address: 127.0.163.2, labels: {app: web}, serviceAccount: web-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client}
spec: {address: 127.0.163.4, labels: {app: client}, serviceAccount: client-sa}
`

const strictYAML = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
`

func startMesh(t *testing.T, files map[string]string, o meshtest.Options) *meshtest.Mesh {
	t.Helper()
	o.MTLS = caAddr
	return meshtest.StartWith(t, o, files, workloads)
}

// workloads are web (an app behind its sidecar) and a client sidecar.
var workloads = []meshtest.Workload{
	{Name: "web", IP: webIP, AppIP: webApp, Ports: []int{8080}, Labels: map[string]string{"app": "web"}, ServiceAccount: "web-sa"},
	{Name: "client", IP: clientIP, Labels: map[string]string{"app": "client"}, ServiceAccount: "client-sa"},
}

// lucid runs the CLI in-process and returns what it printed.
func lucid(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := cli.NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// get sends GET url through the client sidecar and decodes the app's echo.
func get(t *testing.T, m *meshtest.Mesh, url string) (int, http.Header, meshtest.Echo, string) {
	t.Helper()
	resp, err := m.Client(clientIP).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e meshtest.Echo
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, resp.Header, e, string(b)
}

// plaintext sends one HTTP/1.1 request straight to web's inbound port, as a client
// without a sidecar would; it returns the status line, or "" and the error when the
// connection is refused.
func plaintext(t *testing.T) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort(webIP, webInPort), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: web.default.svc.cluster.local\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	if len(b) == 0 {
		if err == nil {
			err = io.EOF
		}
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\r\n")
	return line, nil
}

// Sidecar to sidecar is mutual TLS by default (auto mTLS, PERMISSIVE): the request
// arrives, the server's sidecar terminated TLS from the client's identity, and a client
// without a sidecar still gets through in plaintext.
func TestAutoMTLSPermissive(t *testing.T) {
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML}, meshtest.Options{})
	code, _, e, body := get(t, m, "http://web.default.svc.cluster.local:8080/hello")
	if code != 200 || e.Service != "web" {
		t.Fatalf("through the mesh: %d %s", code, body)
	}
	if got := e.Headers.Get("X-Forwarded-Client-Cert"); !strings.Contains(got, "URI=spiffe://cluster.local/ns/default/sa/client-sa") ||
		!strings.Contains(got, "By=spiffe://cluster.local/ns/default/sa/web-sa") {
		t.Errorf("the app sees X-Forwarded-Client-Cert %q; want the client's and its own SPIFFE identities", got)
	}
	line, err := plaintext(t)
	if err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("plaintext client under PERMISSIVE: %q %v", line, err)
	}
}

// STRICT: the plaintext client's connection is closed without an answer and the server's
// sidecar logs why; the mesh client still gets through over mutual TLS.
func TestStrictRefusesPlaintext(t *testing.T) {
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "strict.yaml": strictYAML}, meshtest.Options{})
	if code, _, e, body := get(t, m, "http://web.default.svc.cluster.local:8080/hello"); code != 200 || e.Service != "web" {
		t.Fatalf("through the mesh: %d %s", code, body)
	}
	if line, err := plaintext(t); err == nil {
		t.Fatalf("plaintext client under STRICT got an answer: %q", line)
	}
	defer func() {
		if t.Failed() {
			t.Log(m.Logs.String())
		}
	}()
	testutil.Eventually(t, 5*time.Second, "the refusal explained in the log", func() bool {
		return strings.Contains(m.Logs.String(), "plaintext connection refused: the port requires mutual TLS (PeerAuthentication STRICT)") &&
			strings.Contains(m.Logs.String(), "peer_authentication=istio-system/default")
	})
	testutil.Eventually(t, 5*time.Second, "the refusal counted in the sidecar's stats", func() bool {
		resp, err := http.Get("http://" + testutil.Admin(webIP) + "/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "mtls.plaintext_refused: 1")
	})
}

// A DestinationRule naming a service account the server does not have: the client's
// sidecar refuses the server's certificate, answers Envoy's 503 with UF and the TLS
// reason, and x-lucid-error says whose certificate did not match.
func TestSANMismatchExplained(t *testing.T) {
	dr := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/default/sa/someone-else"]}}
`
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "dr.yaml": dr}, meshtest.Options{})
	code, h, _, body := get(t, m, "http://web.default.svc.cluster.local:8080/hello")
	const wantBody = "upstream connect error or disconnect/reset before headers. retried and the latest reset reason: remote connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
	if code != 503 || body != wantBody {
		t.Fatalf("got %d %q\nwant 503 %q", code, body, wantBody)
	}
	if x := h.Get("x-lucid-error"); !strings.Contains(x, "the peer is spiffe://cluster.local/ns/default/sa/web-sa, not one of the allowed identities (spiffe://cluster.local/ns/default/sa/someone-else)") {
		t.Errorf("x-lucid-error = %q", x)
	}
	defer func() {
		if t.Failed() {
			t.Log(m.Logs.String())
		}
	}()
	testutil.Eventually(t, 5*time.Second, "flag UF with the TLS reason in the router log", func() bool {
		return strings.Contains(m.Logs.String(), "flags=UF,URX details=upstream_reset_before_response_started{remote_connection_failure|TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end}")
	})
}

// Certificates that live 3 s are renewed every ~1.5 s on both sides while requests flow
// on kept-alive and new connections: no request fails across at least three renewals.
func TestRotationUnderLoad(t *testing.T) {
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "strict.yaml": strictYAML}, meshtest.Options{CertTTL: 3 * time.Second})
	renewals := func() int { return strings.Count(m.Logs.String(), "workload certificate renewed") }
	var (
		mu       sync.Mutex
		failures []string
		ok       atomic.Int64
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := m.Client(clientIP)
			defer c.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://web.default.svc.cluster.local:8080/load", nil)
				if i == 0 && n%5 == 0 {
					req.Close = true // some requests on new connections, with the certificate of the moment
				}
				resp, err := c.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("x-lucid-error")))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}()
	}
	testutil.Eventually(t, 20*time.Second, "three renewals of each sidecar's certificate", func() bool { return renewals() >= 6 })
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed across %d renewals; first: %s", len(failures), int(ok.Load())+len(failures), renewals(), failures[0])
	}
	if ok.Load() == 0 {
		t.Fatal("no request went through")
	}
	t.Logf("%d requests, %d renewals, no failure", ok.Load(), renewals())
}

// The classic misconfiguration: a DestinationRule turns TLS off towards a STRICT server.
// Envoy's 503 (UC: the server closes the plaintext connection) and x-lucid-error names
// the PeerAuthentication that requires mutual TLS and the DestinationRule that disabled
// it.
func TestDisableToStrictExplained(t *testing.T) {
	dr := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy: {tls: {mode: DISABLE}}
`
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "strict.yaml": strictYAML, "dr.yaml": dr}, meshtest.Options{})
	code, h, _, body := get(t, m, "http://web.default.svc.cluster.local:8080/hello")
	if code != 503 || !strings.HasPrefix(body, "upstream connect error or disconnect/reset before headers.") {
		t.Fatalf("got %d %q, want Envoy's 503", code, body)
	}
	want := "the server requires mutual TLS (PeerAuthentication istio-system/default is STRICT) but DestinationRule default/web sets tls.mode DISABLE"
	if x := h.Get("x-lucid-error"); !strings.Contains(x, want) {
		t.Errorf("x-lucid-error = %q\nwant it to say %q", x, want)
	}
}

// ISTIO_MUTUAL towards a server whose PeerAuthentication is DISABLE (it answers in
// plaintext): UF with Envoy's WRONG_VERSION_NUMBER and an explanation.
func TestMutualToDisabledExplained(t *testing.T) {
	disable := `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: default}
spec: {selector: {matchLabels: {app: web}}, mtls: {mode: DISABLE}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "disable.yaml": disable}, meshtest.Options{})
	code, h, _, body := get(t, m, "http://web.default.svc.cluster.local:8080/hello")
	if code != 503 || !strings.Contains(body, "transport failure reason: TLS_error:|268435703:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end") {
		t.Fatalf("got %d %q", code, body)
	}
	if x := h.Get("x-lucid-error"); !strings.Contains(x, "answered in plaintext, not TLS") {
		t.Errorf("x-lucid-error = %q", x)
	}
}

// lucid proxy-config secret shows istioctl's table for the workload certificate and the
// mesh root, both ACTIVE and valid.
func TestProxyConfigSecret(t *testing.T) {
	startMesh(t, map[string]string{"mesh.yaml": meshYAML}, meshtest.Options{})
	out, err := lucid(t, "proxy-config", "secret", "--admin", testutil.Admin(webIP))
	if err != nil {
		t.Fatalf("proxy-config secret: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "RESOURCE NAME TYPE STATUS VALID CERT SERIAL NUMBER NOT AFTER NOT BEFORE" {
		t.Fatalf("table:\n%s", out)
	}
	def, ca := strings.Fields(lines[1]), strings.Fields(lines[2])
	if def[0] != "default" || def[1]+" "+def[2] != "Cert Chain" || def[3] != "ACTIVE" || def[4] != "true" {
		t.Errorf("default row: %q", lines[1])
	}
	if ca[0] != "ROOTCA" || ca[1] != "CA" || ca[2] != "ACTIVE" || ca[3] != "true" {
		t.Errorf("ROOTCA row: %q", lines[2])
	}
	// The other views read the same dump, secrets and all.
	if out, err := lucid(t, "proxy-config", "clusters", "--admin", testutil.Admin(webIP)); err != nil || !strings.Contains(out, "web.default.svc.cluster.local") {
		t.Errorf("proxy-config clusters beside the secrets: %v\n%s", err, out)
	}
}

// HTTP/2 between the sidecars (h2UpgradePolicy UPGRADE) over mutual TLS: the client's
// sidecar speaks h2 with prior knowledge inside TLS, as Envoy's AUTO codec accepts it.
func TestH2OverMTLS(t *testing.T) {
	dr := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
`
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "strict.yaml": strictYAML, "dr.yaml": dr}, meshtest.Options{})
	for range 3 {
		code, _, e, body := get(t, m, "http://web.default.svc.cluster.local:8080/h2")
		if code != 200 || e.Service != "web" || !strings.Contains(e.Headers.Get("X-Forwarded-Client-Cert"), "URI=spiffe://cluster.local/ns/default/sa/client-sa") {
			t.Fatalf("h2 over mutual TLS: %d %s", code, body)
		}
	}
}

// lucid why shows the TLS mode the request's cluster originates and what chose it.
func TestWhyShowsTLSMode(t *testing.T) {
	startMesh(t, map[string]string{"mesh.yaml": meshYAML}, meshtest.Options{})
	out, err := lucid(t, "why", "--admin", testutil.Admin(clientIP), "http://web.default.svc.cluster.local:8080/")
	if err != nil {
		t.Fatalf("why: %v\n%s", err, out)
	}
	if !strings.Contains(out, "tls auto by auto mTLS (ISTIO_MUTUAL to endpoints with a sidecar)") {
		t.Errorf("why does not show the TLS mode:\n%s", out)
	}
}
