package kubeapply_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/kube/kubeapply"
)

func writeKubeconfig(t *testing.T, path, server string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + server + `"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRESTConfigSources: --kubeconfig wins over $KUBECONFIG. (~/.kube/config, the next
// source, is fixed when client-go initialises, so it is not switched here.)
func TestRESTConfigSources(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a Pod
	env := filepath.Join(t.TempDir(), "env")
	writeKubeconfig(t, env, "https://127.0.98.2:2")
	flag := filepath.Join(t.TempDir(), "flag")
	writeKubeconfig(t, flag, "https://127.0.98.3:3")

	host := func(path string) string {
		t.Helper()
		cfg, err := kubeapply.RESTConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Host
	}
	t.Setenv("KUBECONFIG", env)
	if got := host(""); got != "https://127.0.98.2:2" {
		t.Errorf("$KUBECONFIG: host %s", got)
	}
	if got := host(flag); got != "https://127.0.98.3:3" {
		t.Errorf("--kubeconfig: host %s", got)
	}

	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing")) // $KUBECONFIG replaces ~/.kube/config
	_, err := kubeapply.RESTConfig("")
	if err == nil || !strings.Contains(err.Error(), "kubernetes client config") {
		t.Errorf("no config anywhere: %v, want an error", err)
	}
}
