package kubeclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeKubeconfig(t *testing.T, dir, server string) string {
	t.Helper()
	p := filepath.Join(dir, "config")
	body := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: ` + server + `}}]
users: [{name: u, user: {token: secret}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// isolate makes the environment find nothing unless a test puts it there.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	return home
}

func TestConfigOrder(t *testing.T) {
	home := isolate(t)
	flag := writeKubeconfig(t, t.TempDir(), "https://127.0.98.1:6443")
	env := writeKubeconfig(t, t.TempDir(), "https://127.0.98.2:6443")
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeKubeconfig(t, filepath.Join(home, ".kube"), "https://127.0.98.3:6443")

	t.Setenv("KUBECONFIG", env)
	cfg, where, err := Config(flag)
	if err != nil || cfg.Host != "https://127.0.98.1:6443" || !strings.Contains(string(where), flag) {
		t.Fatalf("--kubeconfig: host %v from %q, %v; want the flag's file first", cfg, where, err)
	}
	if cfg.UserAgent != "lucid" || cfg.BearerToken != "secret" {
		t.Errorf("user agent %q token %q", cfg.UserAgent, cfg.BearerToken)
	}
	if cfg, _, err = Config(""); err != nil || cfg.Host != "https://127.0.98.2:6443" {
		t.Fatalf("$KUBECONFIG: %v, %v; want it before ~/.kube/config", cfg, err)
	}
	t.Setenv("KUBECONFIG", "")
	if cfg, _, err = Config(""); err != nil || cfg.Host != "https://127.0.98.3:6443" {
		t.Fatalf("~/.kube/config: %v, %v", cfg, err)
	}
	c, err := New(cfg)
	if err != nil || c.Dynamic == nil {
		t.Fatalf("New: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	isolate(t)
	if _, _, err := Config("/nonexistent/kubeconfig"); err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("missing --kubeconfig file: %v, want an error naming it", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("clusters: [oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Config(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("malformed kubeconfig: %v, want an error naming it", err)
	}
	if _, _, err := Config(""); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("nothing configured: %v, want an error saying how to point at an API server", err)
	}
}
