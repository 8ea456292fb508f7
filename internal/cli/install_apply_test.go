package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func runLucid(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestInstallApply runs `lucid install --apply` against a real API server: everything is
// created, and a second apply changes nothing.
func TestInstallApply(t *testing.T) {
	c := kubetest.New(t, kubetest.Options{})
	out, err := runLucid(t, "install", "--apply", "--kubeconfig", c.Kubeconfig, "--image", "lucid:test")
	if err != nil {
		t.Fatalf("install --apply: %v\n%s", err, out)
	}
	t.Logf("lucid install --apply:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if !strings.HasSuffix(l, " created") {
			t.Errorf("first apply: %q, want created", l)
		}
	}

	dyn, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, o := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{
		{kubetest.CRDs, "", "virtualservices.networking.istio.io"},
		{kubetest.CRDs, "", "authorizationpolicies.security.istio.io"},
		{kubetest.Namespaces, "", "istio-system"},
		{kubetest.ServiceAccounts, "istio-system", "lucid-discovery"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, "", "lucid-discovery"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, "", "lucid-discovery"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, "istio-system", "lucid-discovery"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, "istio-system", "lucid-discovery"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "istio-system", "lucid-discovery"},
		{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "istio-system", "lucid-discovery"},
		{schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}, "", "lucid-sidecar-injector"},
	} {
		var err error
		if o.ns == "" {
			_, err = dyn.Resource(o.gvr).Get(ctx, o.name, metav1.GetOptions{})
		} else {
			_, err = dyn.Resource(o.gvr).Namespace(o.ns).Get(ctx, o.name, metav1.GetOptions{})
		}
		if err != nil {
			t.Errorf("%s %s/%s after install --apply: %v", o.gvr.Resource, o.ns, o.name, err)
		}
	}
	deploy, err := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).
		Namespace("istio-system").Get(ctx, "lucid-discovery", metav1.GetOptions{})
	if err == nil {
		if !strings.Contains(deploy.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"].(string), "lucid:test") {
			t.Errorf("deployment image is not --image's")
		}
	}

	again, err := runLucid(t, "install", "--apply", "--kubeconfig", c.Kubeconfig, "--image", "lucid:test")
	if err != nil {
		t.Fatalf("second install --apply: %v\n%s", err, again)
	}
	againLines := strings.Split(strings.TrimSpace(again), "\n")
	if len(againLines) != len(lines) {
		t.Errorf("second apply printed %d lines, first %d", len(againLines), len(lines))
	}
	for _, l := range againLines {
		if !strings.HasSuffix(l, " unchanged") {
			t.Errorf("second apply: %q, want unchanged", l)
		}
	}
}

func TestInstallApplyBadKubeconfig(t *testing.T) {
	_, err := runLucid(t, "install", "--apply", "--kubeconfig", "/nonexistent/kubeconfig")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("error = %v, want it to name the kubeconfig file", err)
	}
}

// TestInstallApplyFindsTheClusterAsDiscovery: install --apply looks for the cluster in the
// same order as discovery --kubernetes (kubeclient.Config): $KUBECONFIG before
// ~/.kube/config. The server named in $KUBECONFIG refuses connections, so the error names it.
func TestInstallApplyFindsTheClusterAsDiscovery(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	kubeconfig := func(path, server string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		body := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + server + "}}]\n" +
			"users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig(filepath.Join(home, ".kube", "config"), "https://127.0.141.1:1")
	env := filepath.Join(t.TempDir(), "env")
	kubeconfig(env, "https://127.0.141.2:1")
	t.Setenv("KUBECONFIG", env)
	_, err := runLucid(t, "install", "--apply")
	if err == nil || !strings.Contains(err.Error(), "127.0.141.2") {
		t.Errorf("install --apply with $KUBECONFIG set: %v, want an error naming $KUBECONFIG's server 127.0.141.2", err)
	}
}
