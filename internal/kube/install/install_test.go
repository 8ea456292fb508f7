package install

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestGolden(t *testing.T) {
	got, err := Render(Options{Image: "ghcr.io/lucid-mesh/lucid:test", NoCRDs: true})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Golden(t, filepath.Join("testdata", "install.yaml"), got)
}

// TestCRDs: the embedded stream holds the CRDs of every Istio kind Lucid reads.
func TestCRDs(t *testing.T) {
	out, err := Render(Options{Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Spec       struct {
				Names struct{ Kind string } `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("a document does not parse: %v\n%.300s", err, doc)
		}
		if obj.Kind == "" || obj.APIVersion == "" {
			t.Fatalf("a document without kind or apiVersion:\n%.300s", doc)
		}
		if obj.Kind == "CustomResourceDefinition" {
			kinds[obj.Spec.Names.Kind] = true
		}
	}
	for _, k := range []string{"VirtualService", "DestinationRule", "ServiceEntry", "WorkloadEntry", "Gateway",
		"Sidecar", "PeerAuthentication", "AuthorizationPolicy"} {
		if !kinds[k] {
			t.Errorf("no CRD for %s", k)
		}
	}
}

// TestCRDsMatchModule: the embedded copy is the file of the istio.io/api version in go.mod
// (run go generate ./internal/install after changing it).
func TestCRDsMatchModule(t *testing.T) {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api").Output()
	if err != nil || len(bytes.TrimSpace(dir)) == 0 {
		t.Skipf("cannot locate the istio.io/api module: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(string(bytes.TrimSpace(dir)), "kubernetes", "customresourcedefinitions.gen.yaml"))
	if err != nil {
		t.Skipf("module source not available: %v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(crdsGzip))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(zr)
	if !bytes.Equal(got, want) {
		t.Error("crds.gen.yaml.gz is stale: run go generate ./internal/install")
	}
}

// TestWebhookSelectorsMatchInjector: the API server calls the webhook exactly for the pods
// the injector's selector rules accept, so both sides agree on what "selected" means.
func TestWebhookSelectorsMatchInjector(t *testing.T) {
	var cfg *admissionv1.MutatingWebhookConfiguration
	for _, o := range Objects(Options{Image: "img"}) {
		if c, ok := o.(*admissionv1.MutatingWebhookConfiguration); ok {
			cfg = c
		}
	}
	if cfg == nil || len(cfg.Webhooks) != 4 {
		t.Fatal("no webhook configuration with Istio's four webhooks")
	}
	labelSets := []map[string]string{
		{}, {"istio-injection": "enabled"}, {"istio-injection": "disabled"}, {"istio.io/rev": "default"},
		{"istio.io/rev": "canary"}, {"istio-injection": "enabled", "istio.io/rev": "default"},
	}
	podSets := []map[string]string{
		{}, {"sidecar.istio.io/inject": "true"}, {"sidecar.istio.io/inject": "false"}, {"istio.io/rev": "default"},
		{"istio.io/rev": "canary"}, {"sidecar.istio.io/inject": "true", "istio.io/rev": "default"},
		{"sidecar.istio.io/inject": "false", "istio.io/rev": "default"},
	}
	for _, nsl := range labelSets {
		for _, pl := range podSets {
			called := false
			for _, wh := range cfg.Webhooks {
				if matches(t, wh.NamespaceSelector, nsl) && matches(t, wh.ObjectSelector, pl) {
					called = true
				}
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Labels: pl}}
			d := inject.Decide(pod, &inject.Namespace{Name: "shop", Labels: nsl}, inject.PolicyEnabled, "default")
			// Decide also applies the pod's own opt-out after the selectors; both say no then.
			if called != d.Inject {
				t.Errorf("namespace %v, pod %v: webhook called %v, injector decides %v (%s)", nsl, pl, called, d.Inject, d.Reason)
			}
		}
	}
}

func matches(t *testing.T, s *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel.Matches(labels.Set(l))
}

func TestDefaultImage(t *testing.T) {
	for v, want := range map[string]string{"": "ghcr.io/lucid-mesh/lucid:latest", "dev": "ghcr.io/lucid-mesh/lucid:latest",
		"v0.3.0": "ghcr.io/lucid-mesh/lucid:v0.3.0"} {
		if got := DefaultImage(v); got != want {
			t.Errorf("DefaultImage(%q) = %q, want %q", v, got, want)
		}
	}
}
