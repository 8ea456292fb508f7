package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

const jettyDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: jetty, namespace: shop}
spec:
  selector: {matchLabels: {app: jetty}}
  template:
    metadata: {labels: {app: jetty}}
    spec:
      containers:
      - name: jetty
        image: jetty:9.4
        livenessProbe: {httpGet: {path: /ok.jsp, port: 8080}, timeoutSeconds: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: skip, namespace: shop, labels: {sidecar.istio.io/inject: "false"}}
spec: {containers: [{name: c, image: c}]}
`

func TestKubeInjectStdin(t *testing.T) {
	out, errOut, err := runCLI(t, jettyDeployment, "kube-inject", "-f", "-", "--image", "lucid:test")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"path: /app-health/jetty/livez",
		`'{"/app-health/jetty/livez":{"httpGet":{"path":"/ok.jsp","port":8080},"timeoutSeconds":1}}'`,
		"name: istio-proxy", "name: istio-init", "image: lucid:test",
		"service.istio.io/canonical-name: jetty",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if !strings.Contains(errOut, `Pod shop/skip: not injected: the pod's label sidecar.istio.io/inject is "false"`) {
		t.Errorf("stderr does not explain the skipped pod: %q", errOut)
	}
}

func TestKubeInjectFiles(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.yaml"), filepath.Join(dir, "out.yaml")
	if err := os.WriteFile(in, []byte(jettyDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "kube-inject", "-f", in, "-o", out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(b, []byte("istio-proxy")) {
		t.Fatalf("output file not injected: %v", err)
	}
	if _, _, err := runCLI(t, "", "kube-inject"); err == nil || !strings.Contains(err.Error(), "-f is required") {
		t.Errorf("missing -f: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x, annotations: {status.sidecar.istio.io/port: http}}\n"), 0o644)
	if _, _, err := runCLI(t, "", "kube-inject", "-f", bad); err == nil || !strings.Contains(err.Error(), "status.sidecar.istio.io/port") {
		t.Errorf("bad annotation: %v", err)
	}
}

func TestInstallCommand(t *testing.T) {
	out, _, err := runCLI(t, "", "install", "--skip-crds", "--image", "lucid:test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "kind: MutatingWebhookConfiguration") || !strings.Contains(out, "image: lucid:test") {
		t.Errorf("install output incomplete:\n%.500s", out)
	}
	// --apply against a real API server: install_apply_test.go.
	if _, _, err := runCLI(t, "", "install", "--apply", "--kubeconfig", "/nonexistent/kubeconfig"); err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("--apply with a missing kubeconfig: %v", err)
	}
}
