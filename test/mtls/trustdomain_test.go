package mtls

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// A mesh whose meshConfig.trustDomain is not cluster.local, run by `lucid up` (this test
// binary as lucid, in a private network namespace so that up's fixed control-plane ports
// are its own): the CA issues example.org identities and the sidecars ask for them, so
// they become ready; two sidecars talk mutual TLS under STRICT, and an
// AuthorizationPolicy naming a principal of example.org lets that caller in and refuses
// another.
func TestUpTrustDomainNetns(t *testing.T) {
	netns.Run(t, "TestUpTrustDomainChild")
}

const trustDomainMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: web
  namespace: default
  annotations:
    lucid.dev/app-address: 127.0.163.3
    lucid.dev/app: lucid demo-app --listen $LUCID_APP_ADDRESS:8080 --name web
spec: {address: 127.0.163.2, labels: {app: web}, serviceAccount: web-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 127.0.163.4, labels: {app: client}, serviceAccount: client-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other, namespace: default}
spec: {address: 127.0.163.5, labels: {app: other}, serviceAccount: other-sa}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["example.org/ns/default/sa/client-sa"]}}]}]
`

func TestUpTrustDomainChild(t *testing.T) {
	netns.Child(t)
	dir := filepath.Join(t.TempDir(), "td")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"mesh.yaml": trustDomainMesh, "meshconfig.yaml": "trustDomain: example.org\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"} {
		t.Setenv(v, "")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &testutil.Buffer{}
	up := exec.Command(exe, "up", dir)
	up.Env = append(os.Environ(), lucidEnv+"=1")
	up.Stdout, up.Stderr = out, out
	release, err := netns.StartTied(up)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait(); release() }()
	defer func() {
		_ = up.Process.Signal(syscall.SIGINT)
		var err error
		select {
		case err = <-exited:
		case <-time.After(20 * time.Second):
			_ = up.Process.Kill()
			err = <-exited
		}
		if err != nil {
			t.Logf("lucid up exited: %v", err)
		}
		if t.Failed() {
			t.Logf("lucid up:\n%s", out.String())
		}
	}()

	// via sends GET through the explicit proxy of the sidecar at ip (a local-mode app's way).
	via := func(ip string) (int, string, error) {
		proxy, _ := url.Parse("http://" + ip + ":15001")
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}}
		resp, err := c.Get("http://web.default.svc.cluster.local:8080/td")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	var code int
	var body string
	testutil.Eventually(t, 40*time.Second, "client → web through the example.org sidecars", func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("lucid up exited: %v", err)
		default:
		}
		code, body, err = via(clientIP)
		return err == nil && code == 200
	})
	if !strings.Contains(body, "web") {
		t.Fatalf("client → web: %d %q", code, body)
	}
	if !strings.Contains(out.String(), "spiffe://example.org/ns/default/sa/web-sa") {
		t.Errorf("no sidecar said it asked for an example.org identity")
	}
	if code, body, err := via("127.0.163.5"); err != nil || code != 403 || body != "RBAC: access denied" {
		t.Fatalf("other-sa → web: %d %q %v; want the AuthorizationPolicy's 403", code, body, err)
	}
}
