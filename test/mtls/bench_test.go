package mtls

import (
	"io"
	"net/http"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// BenchmarkSidecarToSidecar: requests from a client through its sidecar to web's sidecar
// and app, plaintext vs mutual TLS, on kept-alive upstream connections and with a new
// upstream connection (a full handshake) for every request (maxRequestsPerConnection 1).
func BenchmarkSidecarToSidecar(b *testing.B) {
	const oneShot = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 1}}}
`
	for _, bc := range []struct {
		name string
		mtls bool
		yaml string
	}{
		{"plaintext/keepalive", false, meshYAML},
		{"mtls/keepalive", true, meshYAML},
		{"plaintext/newconn", false, meshYAML + oneShot},
		{"mtls/newconn", true, meshYAML + oneShot},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := meshtest.Options{}
			if bc.mtls {
				o.MTLS = caAddr
			}
			m := meshtest.StartWith(b, o, map[string]string{"mesh.yaml": bc.yaml}, workloads)
			c := m.Client(clientIP)
			defer c.CloseIdleConnections()
			b.ResetTimer()
			for b.Loop() {
				resp, err := c.Get("http://web.default.svc.cluster.local:8080/bench")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
