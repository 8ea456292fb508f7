package meshtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Two routing behaviours of Istio's gateways, through a real gateway and sidecar from a
// real control plane: a Host with a port matches a wildcard host (the route configuration
// ignores the port, as Istio sets it), and a route's headers.response reaches the replies
// the route makes itself (direct response, redirect), a content-type there replacing
// text/plain. Addresses: 127.0.171.100-102.
func TestGatewayHostPortAndConfiguredReplyHeaders(t *testing.T) {
	files := map[string]string{
		"mesh.yaml": HTTPService("blog") + `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: blog, annotations: {lucid.dev/app-address: 127.0.171.101}}
spec: {address: 127.0.171.102, labels: {app: blog, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.171.100, labels: {istio: ingressgateway, app: istio-ingressgateway}}
`,
		"gateway.yaml": `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*.example.com", "exact.example.org"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: blog}
spec:
  hosts: ["*.example.com", "exact.example.org"]
  gateways: [istio-system/ingress]
  http:
  - match: [{uri: {exact: /maintenance}}]
    directResponse: {status: 503, body: {string: '{"maintenance":true}'}}
    headers: {response: {set: {content-type: application/json, x-reply: direct}}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new, redirectCode: 302}
    headers: {response: {add: {x-reply: redirect}}}
  - route: [{destination: {host: blog.default.svc.cluster.local, port: {number: 9080}}}]
`,
	}
	m := Start(t, files, []Workload{
		{Name: "blog", IP: "127.0.171.102", AppIP: "127.0.171.101", Ports: []int{9080}, Labels: map[string]string{"app": "blog", "version": "v1"}, Version: "v1"},
		{Name: "istio-ingressgateway", Namespace: "istio-system", IP: "127.0.171.100", Router: true,
			Labels: map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}},
	})
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	type answer struct {
		code int
		hdr  http.Header
		body string
	}
	get := func(path, host string) answer {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.171.100:8080"+path, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %s): %v\nlogs:\n%s", path, host, err, m.Logs.String())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header, string(b)}
	}
	// The routes arrive through RDS after the listener: poll until the route serves.
	if err := testutil.Poll(10*time.Second, func() error {
		if a := get("/post", "blog.example.com"); a.code != 200 {
			return fmt.Errorf("blog.example.com answered %d", a.code)
		}
		return nil
	}); err != nil {
		t.Fatalf("the gateway never served blog.example.com: %v\nlogs:\n%s", err, m.Logs.String())
	}

	for _, host := range []string{"blog.example.com:8080", "Blog.Example.Com:1234", "exact.example.org:8080", "exact.example.org"} {
		a := get("/post", host)
		var echo Echo
		if a.code != 200 || json.Unmarshal([]byte(a.body), &echo) != nil || echo.Service != "blog" {
			t.Errorf("Host %s: %d %q (x-lucid-error %q), want the blog app", host, a.code, a.body, a.hdr.Get("X-Lucid-Error"))
		}
	}
	if a := get("/post", "blog.example.org:8080"); a.code != http.StatusNotFound || a.hdr.Get("X-Lucid-Error") == "" {
		t.Errorf("a host no server names: %d %q, want 404 NR", a.code, a.hdr.Get("X-Lucid-Error"))
	}

	a := get("/maintenance", "blog.example.com:8080")
	if a.code != 503 || a.body != `{"maintenance":true}` || a.hdr.Get("Content-Type") != "application/json" || a.hdr.Get("X-Reply") != "direct" {
		t.Errorf("direct response: %d %q content-type %q x-reply %q", a.code, a.body, a.hdr.Get("Content-Type"), a.hdr.Get("X-Reply"))
	}
	a = get("/old", "blog.example.com")
	if a.code != 302 || a.hdr.Get("Location") != "http://blog.example.com/new" || a.hdr.Get("X-Reply") != "redirect" {
		t.Errorf("redirect: %d location %q x-reply %q", a.code, a.hdr.Get("Location"), a.hdr.Get("X-Reply"))
	}
}
