package capture

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/kube/iptables"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// The client's address behind the inbound sidecar. The pod (this namespace, the rules of
// `lucid iptables -m TPROXY` or of the default REDIRECT; its sidecar as uid 1337, or under
// TPROXY as root in group 1337 as the injector starts it) runs
// three servers that answer with the peer address they see: HTTP on 9080 (productpage's
// declared HTTP port: virtualInbound's HTTP chain), a line protocol on a declared TCP
// port (the TCP chain) and HTTP on 7777, a port of no service (InboundPassthroughCluster).
// A client in the cluster's namespace (10.10.0.11) calls each on the pod's address.
// Under TPROXY every app sees 10.10.0.11, as Istio's original_src makes Envoy dial the
// app; under REDIRECT the sidecar's own addresses, as before.
const originalSourceConfig = meshConfig + `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: lines, namespace: default}
spec:
  hosts: [lines.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: %s, name: tcp-lines, protocol: TCP}]
  workloadSelector: {labels: {app: productpage}}
`

const clientIP = "10.10.0.11" // the cluster namespace's first address: its calls' source

func TestOriginalSourceTProxyNetns(t *testing.T) {
	netns.Run(t, "TestOriginalSourceTProxyChild", "iptables", "nsenter", "curl")
}

func TestOriginalSourceRedirectNetns(t *testing.T) {
	netns.Run(t, "TestOriginalSourceRedirectChild", "iptables", "nsenter", "curl")
}

func TestOriginalSourceTProxyChild(t *testing.T) {
	netns.Child(t)
	// The TPROXY target needs the kernel's xt_TPROXY (and policy routing); a machine
	// without it cannot run this mode at all, in CI or not.
	if out, err := exec.Command("iptables", "-t", "mangle", "-A", "PREROUTING", "-p", "tcp", "-j", "TPROXY", "--on-port", "1", "--tproxy-mark", "1").CombinedOutput(); err != nil {
		t.Skipf("skipped: this kernel has no iptables TPROXY target (xt_TPROXY): %v: %s", err, strings.TrimSpace(string(out)))
	}
	netns.Sh(t, "iptables -t mangle -D PREROUTING -p tcp -j TPROXY --on-port 1 --tproxy-mark 1")
	originalSource(t, iptables.ModeTProxy, map[string]string{"9080": clientIP, "lines": clientIP, "7777": clientIP})
}

func TestOriginalSourceRedirectChild(t *testing.T) {
	netns.Child(t)
	originalSource(t, iptables.ModeRedirect, map[string]string{"9080": podIP, "lines": podIP, "7777": "127.0.0.6"})
}

// originalSource runs the pod under mode and checks the peer address each app sees
// (want: by port, "lines" for the TCP port).
func originalSource(t *testing.T, mode string, want map[string]string) {
	t.Helper()
	dir := t.TempDir()
	cluster := clusterNamespace(t)
	applyRules(t, func(c *iptables.Config) { c.Mode = mode })
	for _, port := range []string{"9080", "7777"} {
		peerServer(t, "0.0.0.0:"+port)
	}
	lines := lineServer(t, "")
	startPod(t, dir, fmt.Sprintf(originalSourceConfig, lines), "ISTIO_META_INTERCEPTION_MODE="+mode)
	sidecarReady(t)
	inCluster := inNamespace(cluster)
	for _, port := range []string{"9080", "7777"} {
		t.Run("HTTP to "+port, func(t *testing.T) {
			for range 3 { // new and reused upstream connections alike
				out := inCluster(t, "curl", "-s", "-m", "5", "http://"+podIP+":"+port+"/")
				if !strings.HasPrefix(out, want[port]+":") {
					t.Fatalf("%s: the app on %s saw %q, want a connection from %s", mode, port, out, want[port])
				}
			}
		})
	}
	t.Run("TCP to the declared TCP port", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		out := inCluster(t, "env", lineClientEnv+"=1", exe, podIP+":"+lines, "client-first")
		if !strings.HasPrefix(out, "echo hello from "+want["lines"]+":") {
			t.Fatalf("%s: the line client got %q, want the app's echo of a connection from %s", mode, out, want["lines"])
		}
	})
}
