package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// KubeVersion is the Kubernetes release the binaries are built from: test/kubebin/go.mod's
// k8s.io/kubernetes (TestKubeVersionMatchesModule keeps them equal).
const KubeVersion = "v1.36.3"

// BinDir is where scripts/kube-bins.sh puts etcd and kube-apiserver:
// $LUCID_KUBE_BIN, else ${XDG_CACHE_HOME:-$HOME/.cache}/lucid/kube/<KubeVersion>.
func BinDir() string {
	if d := os.Getenv("LUCID_KUBE_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		cache = filepath.Join(os.Getenv("HOME"), ".cache")
	}
	return filepath.Join(cache, "lucid", "kube", KubeVersion)
}

func binariesPresent(dir string) error {
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%w: %s not in %s; run `make kube-bins` (or set LUCID_KUBE_BIN)", errNoBinaries, name, dir)
		}
	}
	return nil
}

// RequireBinaries skips the test when etcd or kube-apiserver is missing, telling to run
// `make kube-bins`; under CI (env CI set) it fails instead, so CI never passes by skipping.
func RequireBinaries(t testing.TB) {
	t.Helper()
	err := binariesPresent(BinDir())
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// New starts a cluster for one test (RequireBinaries first) and stops it when the test
// ends, printing the end of the logs if the test failed. Prefer Shared: a start costs
// seconds.
func New(t testing.TB, o Options) *Cluster {
	t.Helper()
	RequireBinaries(t)
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.Logs(40))
		}
		c.Stop()
	})
	return c
}

var shared testutil.PackageShared[*Cluster]

// SharedMain lets a test package share one cluster between its tests:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(kubetest.SharedMain(m)) }
//	// or, without goleak: os.Exit(kubetest.SharedMain(m).Run())
//
// The cluster starts on the first Shared call (a run that selects no Kubernetes test
// starts nothing) and stops after the last test. When a test failed, the logs are kept
// and their ends printed.
func SharedMain(m *testing.M) testutil.Runner {
	return shared.Main(m, func(c *Cluster, code int) int {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "kubetest: tests failed; the shared cluster's logs:\n%s", c.Logs(40))
			c.StopKeepLogs()
		} else {
			c.Stop()
		}
		return code
	})
}

// Shared returns the package's cluster, starting it on first use. The package's TestMain
// must use SharedMain. Missing binaries skip the test (fail under CI), see RequireBinaries.
// Tests sharing a cluster use their own namespaces and names.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	RequireBinaries(t)
	c, err := shared.Get(t, "kubetest.SharedMain", func() (*Cluster, error) { return Start(context.Background(), Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kubetest: token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
