package authz

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// TestExtAuthzRequestBody: a CUSTOM provider with includeRequestBodyInCheck gets the
// request body in its check through a real sidecar; the app still gets the whole body; a
// body over maxRequestBytes is refused with Envoy's 413 when partial messages are not
// allowed.
func TestExtAuthzRequestBody(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh")
	}
	ln, err := net.Listen("tcp", scExtAuthz+":8000")
	if err != nil {
		t.Skipf("cannot listen on %s:8000: %v", scExtAuthz, err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "let me in" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "the server read "+strconv.Quote(string(b)))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	meshCfg := `extensionProviders:
  - name: body-authz
    envoyExtAuthzHttp:
      service: ext-authz.foo.svc.cluster.local
      port: 8000
      pathPrefix: /check
      includeRequestBodyInCheck: {maxRequestBytes: 16, allowPartialMessage: false}
`
	m := meshtest.StartWith(t, meshtest.Options{MeshConfig: meshCfg}, map[string]string{
		"registry.yaml": sidecarRegistry(t),
		"policy.yaml": `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: body, namespace: foo}
spec:
  action: CUSTOM
  provider: {name: body-authz}
  rules: [{to: [{operation: {paths: ["/upload*"]}}]}]
`,
	}, []meshtest.Workload{{Name: "httpbin", Namespace: "foo", IP: scHTTPBin, AppIP: scApp, Ports: []int{8000},
		Labels: map[string]string{"app": "httpbin", "version": "v1"}}})
	defer m.Stop()
	waitListening(t, scHTTPBin+":8000")
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	for _, c := range []struct {
		body       string
		status     int
		bodyHas    string // in the client's answer
		lucidError string
	}{
		{body: "let me in", status: 200, bodyHas: `"service":"httpbin"`},
		{body: "not me", status: 403, bodyHas: `the server read "not me"`, lucidError: "UAEX: denied by ext_authz"},
		{body: strings.Repeat("x", 17), status: 413, bodyHas: "Payload Too Large", lucidError: "-: the request body is longer than the 16 bytes"},
	} {
		resp, err := client.Post("http://"+scHTTPBin+":8000/upload", "text/plain", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.bodyHas) || !strings.HasPrefix(resp.Header.Get("X-Lucid-Error"), c.lucidError) {
			t.Errorf("POST %q: %d %q x-lucid-error %q; want %d with %q and x-lucid-error %q...",
				c.body, resp.StatusCode, b, resp.Header.Get("X-Lucid-Error"), c.status, c.bodyHas, c.lucidError)
		}
	}
}
