package kubeapply_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryHasNoClientset guards lucid's memory: client-go's typed clientset (and its
// scheme, which registers every built-in API group at init) must not be linked into the
// lucid binary, which every sidecar runs. Packages that pull it in indirectly:
// client-go/informers, dynamic/dynamicinformer, discovery, restmapper.
func TestBinaryHasNoClientset(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-e", "-deps", "github.com/lucid-mesh/lucid/cmd/lucid").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "k8s.io/client-go/kubernetes" || strings.HasPrefix(p, "k8s.io/client-go/kubernetes/") {
			t.Errorf("cmd/lucid depends on %s; use client-go/dynamic, rest and tools/cache instead (find the importer with: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/lucid | grep %s)", p, p)
			return
		}
	}
}
