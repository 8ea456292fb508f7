package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

// podTable is `kubectl get pods -o wide` for a selector.
func (m *mesh) podTable(ctx context.Context, ns, selector string) string {
	ps, err := m.pods(ctx, ns, selector)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %-7s %-9s %-9s %s\n", "NAME", "READY", "STATUS", "RESTARTS", "IP")
	for _, p := range ps {
		ready, restarts := 0, int32(0)
		for _, s := range p.Status.ContainerStatuses {
			if s.Ready {
				ready++
			}
			restarts += s.RestartCount
		}
		fmt.Fprintf(&b, "%-40s %d/%-5d %-9s %-9d %s\n", p.Name, ready, len(p.Spec.Containers), p.Status.Phase, restarts, p.Status.PodIP)
	}
	return b.String()
}

// restartRollout is `kubectl rollout restart deployment/name` followed by `rollout status`.
func (m *mesh) restartRollout(ctx context.Context, t *testing.T, ns, name string) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := m.dyn.Resource(deploymentsGVR).Namespace(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.waitRollout(ctx, ns, name); err != nil {
		t.Fatal(err)
	}
}

func (m *mesh) productpage(ctx context.Context, t *testing.T, ns string) string {
	t.Helper()
	return net.JoinHostPort(m.pod(ctx, t, ns, "app=productpage").Status.PodIP, "9080")
}

// firstAnswer waits until productpage answers with reviews' 200 through the mesh and
// returns productpage's address.
func (m *mesh) firstAnswer(ctx context.Context, t *testing.T, ns string) string {
	t.Helper()
	pp := m.productpage(ctx, t, ns)
	c := &http.Client{Timeout: 10 * time.Second}
	if err := poll(ctx, func() (bool, string) {
		a, err := ask(ctx, c, pp, nil)
		if err != nil {
			return false, err.Error()
		}
		return a.Calls[0].Status == 200, fmt.Sprintf("reviews answered %d %s", a.Calls[0].Status, a.Calls[0].Body)
	}); err != nil {
		t.Fatalf("no answer through the mesh: %v\n%s", err, m.describeApp(ctx, ns, "app=productpage"))
	}
	return pp
}

// TestRollingUpdateUnderLoad: while clients call productpage, which calls reviews through
// the mesh (sidecar to sidecar, in pods), reviews-v1 (two replicas) and reviews-v2 (one)
// are rolled and a reviews-v1 pod is deleted: no request fails. New pods take traffic only
// once Ready (their sidecar's :15021 and the app's rewritten probe), and a deleted pod's
// endpoint leaves the callers' configuration before the pod stops serving.
func TestRollingUpdateUnderLoad(t *testing.T) {
	m := lucidMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const ns = "rollout"
	m.deploy(ctx, t, ns, "NONE", 2)
	pp := m.firstAnswer(ctx, t, ns)
	t.Logf("$ kubectl get pods -n %s -o wide\n%s", ns, m.podTable(ctx, ns, "app=reviews"))

	l := startLoad(pp, 4)
	time.Sleep(2 * time.Second)
	for _, d := range []string{"reviews-v1", "reviews-v2"} {
		start := time.Now()
		m.restartRollout(ctx, t, ns, d)
		t.Logf("$ kubectl rollout restart deployment/%s && kubectl rollout status ...: %s", d, time.Since(start).Round(10*time.Millisecond))
	}
	// The single v2 pod stays (deleting it would empty subset v2: 503 UH, as Envoy answers):
	// delete one of v1's two.
	ps, err := m.pods(ctx, ns, "app=reviews,version=v1")
	if err != nil || len(ps) != 2 {
		t.Fatalf("reviews-v1 pods: %d, %v", len(ps), err)
	}
	victim := ps[0]
	start := time.Now()
	if err := m.dyn.Resource(kubetest.Pods).Namespace(ns).Delete(ctx, victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() (bool, string) {
		_, err := m.getPod(ctx, ns, victim.Name)
		return err != nil, "still there"
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.waitRollout(ctx, ns, "reviews-v1"); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ kubectl delete pod %s: gone after %s, replaced", victim.Name, time.Since(start).Round(10*time.Millisecond))
	time.Sleep(2 * time.Second)
	l.finish(t, "rolling update of reviews-v1 and reviews-v2, deletion of a reviews-v1 pod")
	t.Logf("$ kubectl get pods -n %s -o wide\n%s", ns, m.podTable(ctx, ns, "app=reviews"))
}

// TestControlPlaneRestart: the discovery pod is deleted while traffic flows; its
// Deployment starts another; no request fails (the sidecars keep their configuration),
// every sidecar reconnects and syncs with the new control plane (lucid proxy-status), and
// a routing change made afterwards reaches them.
func TestControlPlaneRestart(t *testing.T) {
	m := lucidMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const ns = "cprestart"
	m.deploy(ctx, t, ns, "NONE", 1)
	pp := m.firstAnswer(ctx, t, ns)
	c := &http.Client{Timeout: 10 * time.Second}

	l := startLoad(pp, 4)
	time.Sleep(2 * time.Second)
	old := m.pod(ctx, t, install.DefaultNamespace, "app="+install.Name)
	start := time.Now()
	if err := m.dyn.Resource(kubetest.Pods).Namespace(install.DefaultNamespace).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var fresh string
	if err := poll(ctx, func() (bool, string) {
		ps, err := m.pods(ctx, install.DefaultNamespace, "app="+install.Name)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			for _, cnd := range p.Status.Conditions {
				if p.Name != old.Name && cnd.Type == "Ready" && cnd.Status == "True" {
					fresh = p.Status.PodIP
					return true, ""
				}
			}
		}
		return false, "no new Ready discovery pod"
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("$ kubectl delete pod -n %s %s: a new control plane pod (%s) Ready after %s", install.DefaultNamespace, old.Name, fresh, time.Since(start).Round(10*time.Millisecond))

	// Every sidecar of the namespace reconnects and acknowledges the new control plane's
	// configuration.
	var table string
	err := poll(ctx, func() (bool, string) {
		out, err := exec.CommandContext(ctx, m.node.Lucid(), "proxy-status", "--discovery-debug", net.JoinHostPort(fresh, "15014")).CombinedOutput()
		table = string(out)
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, out)
		}
		synced := 0
		for _, line := range strings.Split(table, "\n") {
			if strings.Contains(line, "."+ns) && strings.Count(line, "SYNCED") >= 4 {
				synced++
			}
		}
		return synced == 3, fmt.Sprintf("%d of 3 sidecars synced:\n%s", synced, table)
	})
	t.Logf("$ lucid proxy-status --discovery-debug %s:15014 (%s after the deletion)\n%s", fresh, time.Since(start).Round(10*time.Millisecond), table)
	if err != nil {
		t.Fatalf("sidecars did not resync: %v", err)
	}

	// A change made now reaches the sidecars through the new control plane.
	m.apply(ctx, t, reviewsRoute(ns, 0, 100))
	if err := poll(ctx, func() (bool, string) {
		for range 10 {
			a, err := ask(ctx, c, pp, nil)
			if err != nil || a.Calls[0].Answer.Version != "v2" {
				return false, fmt.Sprintf("%+v %v", a.Calls, err)
			}
		}
		return true, ""
	}); err != nil {
		t.Fatalf("route change to 100%% v2 not applied: %v", err)
	}
	t.Logf("route changed to 100%% reviews v2 and applied %s after the deletion", time.Since(start).Round(10*time.Millisecond))
	l.finish(t, "control plane pod deleted and replaced, route changed")
}

// TestStrictMTLS: with a mesh-wide STRICT PeerAuthentication, injected pods stay Ready (the
// kubelet's probes still reach the apps through the agent), productpage still reaches
// reviews (sidecar to sidecar, mutual TLS), and a client without a sidecar cannot reach
// reviews' app port.
func TestStrictMTLS(t *testing.T) {
	m := lucidMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const ns = "strict"
	m.deployStrict(ctx, t, ns) // mtls_test.go: captured bookinfo, the identity checked, STRICT applied
	t.Cleanup(func() {
		_ = m.dyn.Resource(peerAuthGVR).Namespace(install.DefaultNamespace).Delete(context.Background(), "default", metav1.DeleteOptions{})
	})
	time.Sleep(5 * time.Second) // two probe periods under STRICT
	for _, app := range []string{"productpage", "reviews"} {
		for _, p := range mustPods(ctx, t, m, ns, "app="+app) {
			for _, s := range p.Status.ContainerStatuses {
				if !s.Ready || s.RestartCount != 0 {
					t.Errorf("%s container %s under STRICT: ready=%v restarts=%d", p.Name, s.Name, s.Ready, s.RestartCount)
				}
			}
		}
	}
	pp := m.productpage(ctx, t, ns)
	a, err := ask(ctx, &http.Client{Timeout: 10 * time.Second}, pp, nil)
	if err != nil || a.Calls[0].Status != 200 {
		t.Errorf("meshed productpage → reviews under STRICT: %+v %v", a.Calls, err)
	}
	rv := m.pod(ctx, t, ns, "app=reviews,version=v1").Status.PodIP
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + net.JoinHostPort(rv, "9080") + "/")
	if err == nil {
		resp.Body.Close()
		t.Errorf("a plaintext client without a sidecar reached reviews' app port under STRICT: %s", resp.Status)
	} else {
		t.Logf("plaintext client without a sidecar → reviews:9080 under STRICT: %v", err)
	}
}
