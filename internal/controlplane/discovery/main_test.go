package discovery

import (
	"os"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// TestMain shares one kube-apiserver between the Kubernetes tests (started only when one
// runs).
func TestMain(m *testing.M) { os.Exit(kubetest.SharedMain(m).Run()) }
