package kubetest

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	lpki "github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// selfSigned is a serving certificate for ip, and its CA's PEM for a caBundle.
func selfSigned(t *testing.T, ip net.IP) (tls.Certificate, []byte) {
	t.Helper()
	ca := testutil.CA(t, "webhook test CA")
	return testutil.Issue(t, ca, false, ip.String()).TLS, lpki.EncodeCerts(ca.Cert)
}

// TestMutatingWebhookOnLoopback: the API server runs the MutatingAdmissionWebhook plugin
// and calls a webhook on a loopback URL, as the injector's tests need.
func TestMutatingWebhookOnLoopback(t *testing.T) {
	c := Shared(t)
	ctx := ctxT(t)
	cert, caPEM := selfSigned(t, net.IPv4(127, 0, 98, 1))
	ln, err := tls.Listen("tcp", "127.0.98.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	patch := `[{"op":"add","path":"/metadata/labels","value":{"mutated":"yes"}}]`
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		pt := admissionv1.PatchTypeJSONPatch
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: []byte(patch), PatchType: &pt}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	if err := c.CreateNamespace(ctx, "webhook", map[string]string{"kubetest-webhook": "on"}); err != nil {
		t.Fatal(err)
	}
	err = c.Apply(ctx, `apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: kubetest-loopback}
webhooks:
- name: loopback.kubetest.lucid.test
  clientConfig:
    url: https://`+ln.Addr().String()+`/mutate
    caBundle: `+base64.StdEncoding.EncodeToString(caPEM)+`
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  namespaceSelector: {matchLabels: {kubetest-webhook: "on"}}
  sideEffects: None
  admissionReviewVersions: [v1]
  failurePolicy: Fail
  timeoutSeconds: 10
`)
	if err != nil {
		t.Fatal(err)
	}
	d := dyn(t, c)
	webhooks := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	defer func() { _ = d.Resource(webhooks).Delete(ctx, "kubetest-loopback", metav1.DeleteOptions{}) }()

	// The API server picks the new configuration up asynchronously: poll.
	configmaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	var got map[string]string
	i := 0
	err = poll(ctx, func() (bool, error) {
		i++
		cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}}
		cm.SetGenerateName("cm-")
		stored, err := d.Resource(configmaps).Namespace("webhook").Create(ctx, cm, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		got = stored.GetLabels()
		return got["mutated"] == "yes", nil
	})
	if err != nil {
		t.Fatalf("the webhook never mutated a ConfigMap (%d tries, last labels %v): %v", i, got, err)
	}
}
