package node

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/testutil/kubenode"
)

var configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// checkIdentity checks what a person would check of the workload identity on Kubernetes:
// the control plane published the mesh roots in the namespace (istio-ca-root-cert), the
// sidecar of the pod selector selects logged the SPIFFE certificate the CA issued for its service account
// (authenticated by the pod's projected istio-ca token), and it gets its configuration
// on the control plane's TLS port.
func (m *mesh) checkIdentity(ctx context.Context, t *testing.T, ns, selector string) {
	t.Helper()
	cm, err := m.dyn.Resource(configMapsGVR).Namespace(ns).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the mesh roots in namespace %s: %v", ns, err)
	}
	if root, _, _ := unstructured.NestedString(cm.Object, "data", "root-cert.pem"); !strings.Contains(root, "BEGIN CERTIFICATE") {
		t.Errorf("configmap %s/istio-ca-root-cert root-cert.pem: %q", ns, root)
	}
	p := m.pod(ctx, t, ns, selector)
	log, err := m.logs(ctx, ns, p.Name, "istio-proxy", false)
	if err != nil {
		t.Fatal(err)
	}
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	want := "identity=spiffe://cluster.local/ns/" + ns + "/sa/" + sa
	tlsPort := net.JoinHostPort(kubenode.NodeIP, strconv.Itoa(install.SecurePort))
	for _, line := range []string{`msg="workload certificate issued"`, want, `msg="xds stream connected"`, "server=" + tlsPort} {
		if !strings.Contains(log, line) {
			t.Errorf("%s's sidecar log lacks %s:\n%s", p.Name, line, lastLines(log, 30))
		}
	}
}

// deployStrict deploys bookinfo with capture and DNS capture (unmodified apps, as
// TestTrafficThroughCapture), checks the workload identity, and applies Istio's mesh-wide
// STRICT PeerAuthentication; productpage, the entry the test's client (which has no
// sidecar) calls, is PERMISSIVE, as a workload behind an ingress would be.
func (m *mesh) deployStrict(ctx context.Context, t *testing.T, ns string) {
	t.Helper()
	m.namespace(ctx, t, ns, true)
	m.apply(ctx, t, strings.ReplaceAll(bookinfo(ns, "", 1), "annotations: {}", "annotations: "+dnsCapture))
	for _, d := range []string{"productpage-v1", "reviews-v1", "reviews-v2"} {
		if err := m.waitRollout(ctx, ns, d); err != nil {
			t.Fatal(err)
		}
	}
	m.checkIdentity(ctx, t, ns, "app=reviews,version=v1")
	m.apply(ctx, t, `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: `+install.DefaultNamespace+`}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: productpage, namespace: `+ns+`}
spec: {selector: {matchLabels: {app: productpage}}, mtls: {mode: PERMISSIVE}}
`)
}
