package meshtest

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The shared mesh of this package's tests: one sidecar in 127.0.97.0/24.
const sharedIP = "127.0.97.120"

var sharedStarts int

func theMesh(t *testing.T) *Mesh {
	t.Helper()
	return Shared(t, func(t testing.TB) *Mesh {
		t.Helper()
		sharedStarts++
		return Start(t, map[string]string{"shared.yaml": `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: shared
  namespace: default
spec:
  address: ` + sharedIP + `
  labels: {app: shared}
`}, []Workload{{Name: "shared", IP: sharedIP, Labels: map[string]string{"app": "shared"}}})
	})
}

// TestSharedOutlivesItsFirstTest: the first test that asks starts the mesh; it is still
// serving in the next test (a mesh from Start would have stopped at the first test's end),
// and no second one starts.
func TestSharedOutlivesItsFirstTest(t *testing.T) {
	var first *Mesh
	t.Run("first", func(t *testing.T) { first = theMesh(t) })
	t.Run("second", func(t *testing.T) {
		if m := theMesh(t); m != first {
			t.Errorf("a second mesh: %p, want %p", m, first)
		}
		if err := Ready(sharedIP); err != nil {
			t.Errorf("after the first test ended: %v", err)
		}
		if sharedStarts != 1 {
			t.Errorf("started %d times, want once", sharedStarts)
		}
	})
}

// TestPackageTBFatal: a failure while the shared mesh starts ends the starting goroutine
// and is kept for the test that asked; cleanups run last first and remove temporary
// directories.
func TestPackageTBFatal(t *testing.T) {
	p := &packageTB{name: "TestX"}
	var order []int
	var dir string
	reached := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		dir = p.TempDir()
		p.Cleanup(func() { order = append(order, 1) })
		p.Cleanup(func() { order = append(order, 2) })
		p.Fatalf("discovery on %s: refused", "127.0.97.1:0")
		reached = true
	}()
	<-done
	if reached {
		t.Error("Fatalf returned")
	}
	if !p.Failed() || !strings.Contains(p.errors(), "discovery on 127.0.97.1:0: refused") {
		t.Errorf("Failed %v, errors %q", p.Failed(), p.errors())
	}
	p.cleanup()
	if !slices.Equal(order, []int{2, 1}) {
		t.Errorf("cleanups ran in order %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("TempDir %s after the cleanups: %v", dir, err)
	}
}
