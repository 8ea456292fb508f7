package mtls

import (
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// undeclaredYAML is meshYAML with web's port 8080 named without a protocol: web's sidecar
// picks the HTTP or the TCP chain per connection.
var undeclaredYAML = strings.Replace(meshYAML, "ports: [{number: 8080, name: http, protocol: HTTP}]", "ports: [{number: 8080, name: web}]", 1)

// On a port without a declared protocol, mutual TLS from another sidecar is told apart
// by its ALPN, as Istio's clients say it: an HTTP request (the client's pool offers
// istio-http/1.1) goes through web's HTTP chain, which adds the client's identity in
// X-Forwarded-Client-Cert (the TCP chain would pass the request on without it).
func TestUndeclaredPortOverMTLS(t *testing.T) {
	m := startMesh(t, map[string]string{"mesh.yaml": undeclaredYAML}, meshtest.Options{})
	code, _, e, body := get(t, m, "http://web.default.svc.cluster.local:8080/hello")
	if code != 200 || e.Service != "web" || !strings.Contains(e.Headers.Get("X-Forwarded-Client-Cert"), "URI=spiffe://cluster.local/ns/default/sa/client-sa") {
		t.Fatalf("HTTP through the mesh: %d, X-Forwarded-Client-Cert %q\n%s\nwant 200 through web's HTTP chain", code, e.Headers.Get("X-Forwarded-Client-Cert"), body)
	}
}
