package authz

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The real-sidecar runner plays the cases of testdata/cases.yaml through a running mesh:
// the control plane reading the suite's files, a real sidecar for httpbin with its app
// behind it, the client's bytes on the sidecar's inbound listener, and ext_authz answered
// by a real HTTP authorization server at the ext-authz service's address. It asserts what
// the client sees: the status, the body, x-lucid-error (its flags and explanation), the
// access log's response code details, the headers the app received, and for TCP whether
// the connection was kept or closed.
//
// Cases this runner cannot play in plaintext from one loopback address are counted and
// left to TestAuthorizationWithIdentities (identity_test.go), which plays them with mutual
// TLS and bound source addresses: a client identity (principal), a source address,
// x-forwarded-for, an SNI, and policies matching on addresses; gateway x-forwarded-for
// trust is TestRemoteIPThroughGateway's.

// The sidecar test's loopback addresses (127.0.187.0/24).
const (
	scHTTPBin   = "127.0.187.10" // httpbin's sidecar: inbound :8000 (HTTP) and :9000 (TCP)
	scApp       = "127.0.187.11" // httpbin itself
	scExtAuthz  = "127.0.187.20" // the CUSTOM provider's authorization server, :8000
	scRegistryA = "127.0.181.10" // the addresses registry.yaml names, replaced by the ones above
	scRegistryE = "127.0.181.20"
)

// addressBound are the attributes a loopback client cannot present as the case says.
var addressBound = []string{"ipBlocks", "remoteIpBlocks", "source.ip", "remote.ip", "destination.ip", "destination.port", "connection.sni"}

// sidecarSkip says why a case cannot be played through a real sidecar here ("" if it can).
func sidecarSkip(s suite, c tcase) string {
	r := c.Request
	switch {
	case r.Principal != "":
		return "needs an mTLS client identity"
	case r.SourceIP != "", r.XFF != "", r.UseRemoteAddress, r.TrustedHops != 0:
		return "needs a forged source address or x-forwarded-for trust"
	case r.DestinationIP != "", r.SNI != "":
		return "needs another destination address or an SNI"
	case r.Port != 0 && r.Port != 8000 && r.Port != 9000:
		return "needs another port"
	}
	for _, a := range addressBound {
		if strings.Contains(s.Config, a) {
			return "its policies match on " + a
		}
	}
	return ""
}

// sidecarRegistry is registry.yaml with the test's addresses, httpbin's app behind its
// sidecar.
func sidecarRegistry(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "registry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), scRegistryA, scHTTPBin)
	s = strings.ReplaceAll(s, scRegistryE, scExtAuthz)
	return strings.Replace(s, "metadata: {name: httpbin, namespace: foo}\nspec: {address:",
		"metadata: {name: httpbin, namespace: foo, annotations: {lucid.dev/app-address: "+scApp+"}}\nspec: {address:", 1)
}

// TestAuthorizationThroughSidecar runs the playable cases through a real sidecar, one
// mesh per suite.
func TestAuthorizationThroughSidecar(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh per suite")
	}
	keys, ext, registry := sidecarFixtures(t)
	played, skipped := 0, map[string]int{}
	for _, s := range loadSuites(t) {
		var cases []tcase
		for _, c := range s.Cases {
			if why := sidecarSkip(s, c); why != "" {
				skipped[why]++
				continue
			}
			cases = append(cases, c)
		}
		if len(cases) == 0 {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			m := startSuiteMesh(t, s, keys, registry, meshtest.Options{}, nil)
			defer m.Stop()
			for _, c := range cases {
				played++
				t.Run(c.Name, func(t *testing.T) { playCase(t, m, keys, ext, c, plainDial) })
			}
		})
	}
	t.Logf("%d cases played through the sidecar; skipped: %v", played, skipped)
	if played < 40 {
		t.Errorf("only %d cases played through the sidecar; want at least 40", played)
	}
}

// sidecarFixtures are what every suite's mesh shares: the JWT keys, the CUSTOM provider's
// authorization server and the registry.
func sidecarFixtures(t *testing.T) (*testKeys, *sidecarAuthzServer, string) {
	t.Helper()
	return newKeys(t), startSidecarAuthzServer(t), sidecarRegistry(t)
}

// startSuiteMesh starts the control plane with the suite's configuration (and the extra
// files) and httpbin's sidecar and app; o adds mutual TLS.
func startSuiteMesh(t *testing.T, s suite, keys *testKeys, registry string, o meshtest.Options, extra map[string]string) *suiteMesh {
	t.Helper()
	o.AccessLog = filepath.Join(t.TempDir(), "access.log")
	o.MeshConfig = s.Mesh
	files := map[string]string{"registry.yaml": registry}
	if s.Config != "" {
		files["suite.yaml"] = strings.ReplaceAll(s.Config, "{{JWKS}}", keys.jwks)
	}
	for k, v := range extra {
		files[k] = v
	}
	m := meshtest.StartWith(t, o, files, []meshtest.Workload{{
		Name: "httpbin", Namespace: "foo", IP: scHTTPBin, AppIP: scApp, Ports: []int{8000, 9000},
		Labels: map[string]string{"app": "httpbin", "version": "v1"}, Version: "v1", ServiceAccount: "httpbin",
	}})
	waitListening(t, scHTTPBin+":8000", scHTTPBin+":9000")
	return &suiteMesh{Mesh: m, accessLog: o.AccessLog}
}

// waitListening waits until each address accepts connections: a proxy reports ready
// with its first configuration, which under load may not have its listeners yet.
func waitListening(t *testing.T, addrs ...string) {
	t.Helper()
	err := testutil.Poll(10*time.Second, func() error {
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return fmt.Errorf("%s does not accept connections: %w", a, err)
			}
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// suiteMesh is a suite's mesh and the file its sidecar writes the access log to.
type suiteMesh struct {
	*meshtest.Mesh
	accessLog string
}

// dialFunc opens the client's connection to the sidecar's inbound address for a case.
type dialFunc func(t *testing.T, addr string) net.Conn

// plainDial is a plaintext client on loopback.
func plainDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	return dial(t, addr)
}

// playCase sends the case's request to the sidecar's inbound listener over a connection
// dialled by dial and checks what the client sees.
func playCase(t *testing.T, m *suiteMesh, keys *testKeys, ext *sidecarAuthzServer, c tcase, dial dialFunc) {
	t.Helper()
	r, w := c.Request, c.Want
	if r.TCP {
		kept := tcpKept(t, dial(t, scHTTPBin+":9000"))
		if kept != (w.Status == 200) {
			t.Fatalf("connection kept %v, want status %d (kept: 200, closed: 403)", kept, w.Status)
		}
		if w.Details != "" {
			waitLog(t, m, w.Details)
		}
		return
	}
	req := httpRequest(t, r, keys)
	ext.mode.Store(r.ExtAuthz)
	status, header, body := rawRequest(t, dial(t, scHTTPBin+":8000"), req)
	lucidErr := header.Get("X-Lucid-Error")
	if status != w.Status {
		t.Fatalf("status %d, want %d (x-lucid-error %q, body %q)", status, w.Status, lucidErr, body)
	}
	if w.Status == 200 && req.Method == http.MethodHead {
		return // no body to tell whose answer it is
	}
	if w.Status == 200 {
		var e meshtest.Echo
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Service != "httpbin" {
			t.Fatalf("the answer is not httpbin's: %q (%v)", body, err)
		}
		for k, v := range w.UpstreamHeaders {
			if got := e.Headers.Get(k); got != v {
				t.Errorf("the app got %s = %q, want %q", k, got, v)
			}
		}
		for _, k := range w.UpstreamAbsent {
			if got := e.Headers.Get(k); got != "" {
				t.Errorf("the app got %s = %q, want it removed", k, got)
			}
		}
		return
	}
	if w.Body != nil && body != *w.Body {
		t.Errorf("body %q, want %q", body, *w.Body)
	}
	wantFlags := "-"
	if w.Flags != "" {
		wantFlags = w.Flags
	}
	if !strings.HasPrefix(lucidErr, wantFlags+": ") || !strings.Contains(lucidErr, w.Explain) {
		t.Errorf("x-lucid-error %q, want %q then an explanation containing %q", lucidErr, wantFlags+": ", w.Explain)
	}
	if w.Details != "" {
		waitLog(t, m, w.Details)
	}
}

// rawRequest writes req's request line and headers as they are (the path unnormalised) on
// the new connection c and returns the answer.
func rawRequest(t *testing.T, c net.Conn, req *http.Request) (status int, header http.Header, body string) {
	t.Helper()
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", req.Method, req.RequestURI, req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: req.Method})
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.RequestURI, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(got)
}

// dial connects to addr, with 10 s for what follows.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// tcpKept sends an HTTP request over c, a new connection to the TCP port (the app behind
// is the echo app): an answer means the sidecar kept the connection, an EOF or a reset
// before one that it closed it.
func tcpKept(t *testing.T, c net.Conn) bool {
	t.Helper()
	defer c.Close()
	if _, err := io.WriteString(c, "GET /tcp HTTP/1.1\r\nHost: httpbin\r\nConnection: close\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer and no close within 10 s")
		}
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// waitLog waits for text in the sidecar's access log (the details of the refusal).
func waitLog(t *testing.T, m *suiteMesh, text string) {
	t.Helper()
	var log []byte
	err := testutil.Poll(3*time.Second, func() error {
		log, _ = os.ReadFile(m.accessLog)
		if !strings.Contains(string(log), text) {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		t.Errorf("the access log never showed %q; it has:\n%s", text, log)
	}
}

// sidecarAuthzServer is the CUSTOM provider's HTTP authorization server on the ext-authz
// service's address: the case's extAuthz mode decides (allow, deny, down: the connection
// is closed without an answer).
type sidecarAuthzServer struct {
	mode atomic.Value // string
}

func startSidecarAuthzServer(t *testing.T) *sidecarAuthzServer {
	t.Helper()
	ln, err := net.Listen("tcp", scExtAuthz+":8000")
	if err != nil {
		t.Skipf("cannot listen on %s:8000: %v", scExtAuthz, err)
	}
	s := &sidecarAuthzServer{}
	s.mode.Store("")
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.mode.Load() == "down" {
			panic(http.ErrAbortHandler) // the connection closes without an answer
		}
		answerCheck(w, r) // authz_test.go
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}
