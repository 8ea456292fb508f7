package mtls

import (
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// TestXDSOverTLS: sidecars that get their configuration on the control plane's TLS port
// (as on Kubernetes: the CA's address, their workload certificate as client certificate)
// serve traffic under STRICT, and the control plane reports them connected there.
func TestXDSOverTLS(t *testing.T) {
	m := startMesh(t, map[string]string{"mesh.yaml": meshYAML, "strict.yaml": strictYAML}, meshtest.Options{XDSOverTLS: true})
	code, _, echo, body := get(t, m, "http://web.default.svc.cluster.local:8080/over-tls")
	if code != 200 || echo.Path != "/over-tls" {
		t.Fatalf("client → web with xDS over TLS: %d %s", code, body)
	}
	logs := m.Logs.String()
	if n := strings.Count(logs, `msg="xds stream connected" component=config server=`+caAddr); n != 2 {
		t.Errorf("%d sidecars connected to xDS on the TLS port %s, want 2:\n%s", n, caAddr, logs)
	}
	if strings.Contains(logs, "xDS refused") {
		t.Errorf("a sidecar of its own identity was refused:\n%s", logs)
	}
}
