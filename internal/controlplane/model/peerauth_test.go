package model

import (
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

const peerAuthYAML = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ns, namespace: foo}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: UNSET}
  portLevelMtls: {8080: {mode: DISABLE}, 9090: {mode: UNSET}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: bar}
spec:
  selector: {matchLabels: {app: legacy}}
  mtls: {mode: DISABLE}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: plain, annotations: {sidecar.istio.io/inject: "false"}}
spec: {address: 127.0.163.50}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: meshed}
spec: {address: 127.0.163.51}
`

// Istio's precedence: workload port level, workload, namespace, mesh, PERMISSIVE; UNSET
// defers to the next.
func TestInboundMTLSPrecedence(t *testing.T) {
	objs, diags := config.Parse("pa.yaml", []byte(peerAuthYAML))
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	m, _ := Build(objs, nil)
	tests := []struct {
		ns     string
		labels map[string]string
		port   uint32
		mode   MTLSMode
		policy string
	}{
		{"foo", map[string]string{"app": "httpbin"}, 8080, MTLSDisable, "foo/httpbin"},   // port level
		{"foo", map[string]string{"app": "httpbin"}, 9090, MTLSPermissive, "foo/ns"},     // port UNSET, workload UNSET → namespace
		{"foo", map[string]string{"app": "other"}, 8080, MTLSPermissive, "foo/ns"},       // namespace
		{"bar", map[string]string{"app": "legacy"}, 8080, MTLSDisable, "bar/legacy"},     // workload
		{"bar", map[string]string{"app": "x"}, 8080, MTLSStrict, "istio-system/default"}, // mesh
		{"foo", map[string]string{"app": "httpbin"}, 7070, MTLSPermissive, "foo/ns"},     // no port-level entry
	}
	for _, tt := range tests {
		mode, policy := m.InboundMTLS(&Proxy{Namespace: tt.ns, Labels: tt.labels}, tt.port)
		if mode != tt.mode || policy != tt.policy {
			t.Errorf("%s %v port %d: %s from %q, want %s from %q", tt.ns, tt.labels, tt.port, mode, policy, tt.mode, tt.policy)
		}
	}
	if mode, policy := (&Mesh{}).InboundMTLS(&Proxy{Namespace: "x"}, 80); mode != MTLSPermissive || policy != "" {
		t.Errorf("no policy: %s %q, want PERMISSIVE (the mesh default)", mode, policy)
	}
	if m.HasSidecar(&Endpoint{Workload: "plain", Namespace: "default"}) || !m.HasSidecar(&Endpoint{Workload: "meshed", Namespace: "default"}) {
		t.Error("HasSidecar: sidecar.istio.io/inject \"false\" has none, a WorkloadEntry otherwise has one")
	}
	if m.HasSidecar(&Endpoint{Workload: "meshed", Namespace: "default", Labels: map[string]string{TLSModeLabel: "disabled"}}) ||
		m.HasSidecar(&Endpoint{Address: "10.0.0.1"}) || !m.HasSidecar(&Endpoint{Labels: map[string]string{TLSModeLabel: "istio"}}) {
		t.Error("HasSidecar: the tlsMode label decides first; an inline endpoint has none without it")
	}
}
