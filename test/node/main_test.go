// Package node runs Lucid on a real single-node Kubernetes (internal/testutil/kubenode:
// kubelet, containerd, pods in network namespaces on a bridge): `lucid install --apply`
// puts the control plane and the webhook in a pod, the webhook injects the sidecar into
// Deployments of a labelled namespace, and each test checks what a person would check with
// kubectl (pod status, probes, Events, logs) and with requests through the mesh. Pod
// addresses: 10.213.0.0/24 on the harness's bridge; nothing else is reached.
//
// Run alone: `make kube-bins && go test -count=1 -v ./test/node/` (root, Linux, Debian's
// containerd, runc and containernetworking-plugins).
package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/testutil/kubenode"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubenode.SharedMain(m).Run()) }

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	eventsGVR      = schema.GroupVersionResource{Version: "v1", Resource: "events"}
	mwcGVR         = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
)

// mesh is the node with Lucid installed on it, shared by the package's tests.
type mesh struct {
	node *kubenode.Node
	dyn  dynamic.Interface
	http *http.Client // the admin's, for pod logs and the kubelet's metrics through the API server
}

var installed struct {
	sync.Mutex
	m   *mesh
	err error
}

// lucidMesh returns the node with `lucid install --apply` done and the control plane
// Ready (installing on first use).
func lucidMesh(t *testing.T) *mesh {
	t.Helper()
	n := kubenode.Shared(t)
	installed.Lock()
	defer installed.Unlock()
	if installed.m == nil && installed.err == nil {
		start := time.Now()
		installed.m, installed.err = installLucid(n)
		if installed.err == nil {
			t.Logf("lucid install --apply, control plane Ready, webhook serving: %s", time.Since(start).Round(10*time.Millisecond))
		}
	}
	if installed.err != nil {
		t.Fatal(installed.err)
	}
	return installed.m
}

// installLucid runs `lucid install --apply` with the image built from the working tree, then
// adapts the control plane's Deployment to a node without kube-proxy and cluster DNS
// (the only change to what `lucid install` renders; see docs/kubernetes-node.md): the API
// server is reached by name through the node's forwarder, and injected sidecars dial the
// control plane at the node's forwarder for the lucid-discovery Service.
func installLucid(n *kubenode.Node) (*mesh, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dyn, err := n.Dynamic()
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(n.Config)
	if err != nil {
		return nil, err
	}
	m := &mesh{node: n, dyn: dyn, http: hc}
	cmd := exec.CommandContext(ctx, n.Lucid(), "install", "--apply", "--kubeconfig", n.Kubeconfig, "--image", kubenode.LucidImage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("lucid install --apply: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "$ lucid install --apply --image %s\n%s", kubenode.LucidImage, out)

	// Sidecars dial the TLS port (xDS and their certificates) at the node's address, which
	// the port's certificate then names (--ca-hosts).
	xds := net.JoinHostPort(kubenode.NodeIP, strconv.Itoa(install.SecurePort)) // ExposeService below
	env, aliases := kubenode.InClusterAPI()
	patch := map[string]any{"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
		"hostAliases": aliases,
		"containers": []any{map[string]any{
			"name": "discovery",
			"env":  env,
			"args": append(append([]string{}, install.DiscoveryArgs...),
				"--injector-image="+kubenode.LucidImage, "--injector-discovery-address="+xds, "--ca-hosts="+kubenode.NodeIP),
		}},
	}}}}
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	if _, err := dyn.Resource(deploymentsGVR).Namespace(install.DefaultNamespace).Patch(ctx, install.Name, types.StrategicMergePatchType, b, metav1.PatchOptions{}); err != nil {
		return nil, fmt.Errorf("adapt the discovery Deployment to the node: %w", err)
	}
	if err := m.waitRollout(ctx, install.DefaultNamespace, install.Name); err != nil {
		return nil, err
	}
	for port, name := range map[int]string{install.GRPCPort: "grpc-xds", install.SecurePort: "https-dns"} {
		if _, err := n.ExposeService(ctx, install.DefaultNamespace, install.Name, name, port); err != nil {
			return nil, err
		}
	}
	// The webhook is in service once Lucid has patched its CA into the configuration.
	err = poll(ctx, func() (bool, string) {
		mwc, err := dyn.Resource(mwcGVR).Get(ctx, install.WebhookConfig, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		hooks, _, _ := unstructured.NestedSlice(mwc.Object, "webhooks")
		for _, h := range hooks {
			if b, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle"); b == "" {
				return false, "caBundle not patched yet"
			}
		}
		return len(hooks) > 0, "no webhooks"
	})
	if err != nil {
		return nil, fmt.Errorf("webhook caBundle: %w\n%s", err, m.describeApp(ctx, install.DefaultNamespace, "app="+install.Name))
	}
	return m, nil
}

// apply server-side-applies YAML as the admin.
func (m *mesh) apply(ctx context.Context, t *testing.T, yaml string) {
	t.Helper()
	if err := m.node.Apply(ctx, yaml); err != nil {
		t.Fatal(err)
	}
}

// namespace creates a namespace labelled for injection (or not).
func (m *mesh) namespace(ctx context.Context, t *testing.T, name string, inject bool) {
	t.Helper()
	label := ""
	if inject {
		label = "\n  labels: {istio-injection: enabled}"
	}
	m.apply(ctx, t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+name+label+"\n")
}

// waitRollout waits until Deployment ns/name has all its replicas updated and available,
// and no old pod is left (kubectl rollout status).
func (m *mesh) waitRollout(ctx context.Context, ns, name string) error {
	err := poll(ctx, func() (bool, string) {
		d, err := m.dyn.Resource(deploymentsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		gen, _, _ := unstructured.NestedInt64(d.Object, "metadata", "generation")
		obs, _, _ := unstructured.NestedInt64(d.Object, "status", "observedGeneration")
		want, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas")
		updated, _, _ := unstructured.NestedInt64(d.Object, "status", "updatedReplicas")
		avail, _, _ := unstructured.NestedInt64(d.Object, "status", "availableReplicas")
		total, _, _ := unstructured.NestedInt64(d.Object, "status", "replicas")
		return obs >= gen && updated == want && avail == want && total == want,
			fmt.Sprintf("generation %d/%d, %d updated, %d available, %d total of %d", obs, gen, updated, avail, total, want)
	})
	if err != nil {
		sel := "app=" + name
		if d, gerr := m.dyn.Resource(deploymentsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{}); gerr == nil {
			if l, _, _ := unstructured.NestedStringMap(d.Object, "spec", "selector", "matchLabels"); len(l) > 0 {
				sel = labelSelector(l)
			}
		}
		return fmt.Errorf("deployment %s/%s: %w\n%s", ns, name, err, m.describeApp(context.Background(), ns, sel))
	}
	return nil
}

func labelSelector(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// pods lists the running (not terminating) pods matching selector.
func (m *mesh) pods(ctx context.Context, ns, selector string) ([]corev1.Pod, error) {
	l, err := m.dyn.Resource(kubetest.Pods).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, u := range l.Items {
		var p corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			return nil, err
		}
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// pod returns the one running pod matching selector.
func (m *mesh) pod(ctx context.Context, t *testing.T, ns, selector string) corev1.Pod {
	t.Helper()
	ps, err := m.pods(ctx, ns, selector)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 {
		t.Fatalf("%d pods match %s in %s, want 1", len(ps), selector, ns)
	}
	return ps[0]
}

func (m *mesh) getPod(ctx context.Context, ns, name string) (corev1.Pod, error) {
	var p corev1.Pod
	u, err := m.dyn.Resource(kubetest.Pods).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return p, err
	}
	err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p)
	return p, err
}

// events are the pod's Events, oldest first (kubectl describe's Events section).
func (m *mesh) events(ctx context.Context, ns, pod string) ([]corev1.Event, error) {
	l, err := m.dyn.Resource(eventsGVR).Namespace(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, u := range l.Items {
		var e corev1.Event
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return eventTime(out[i]).Before(eventTime(out[j])) })
	return out, nil
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// logs is `kubectl logs pod -c container` (through the API server and the kubelet).
func (m *mesh) logs(ctx context.Context, ns, pod, container string, previous bool) (string, error) {
	return m.get(ctx, fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/log?container=%s&previous=%v", m.node.Config.Host, ns, pod, container, previous))
}

// describe is `kubectl describe pod`, cut to what the scenarios look at: status,
// conditions, each container's state, restarts and probes, and the Events.
func (m *mesh) describe(ctx context.Context, p corev1.Pod) string {
	if fresh, err := m.getPod(ctx, p.Namespace, p.Name); err == nil {
		p = fresh
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Name:       %s\nNamespace:  %s\nStatus:     %s\nIP:         %s\n", p.Name, p.Namespace, p.Status.Phase, p.Status.PodIP)
	statuses := map[string]corev1.ContainerStatus{}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		statuses[s.Name] = s
	}
	section := func(title string, cs []corev1.Container) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s:\n", title)
		for _, c := range cs {
			s := statuses[c.Name]
			fmt.Fprintf(&b, "  %s:\n    Image:          %s\n    State:          %s\n", c.Name, c.Image, stateString(s.State))
			if s.LastTerminationState.Terminated != nil {
				fmt.Fprintf(&b, "    Last State:     %s\n", stateString(s.LastTerminationState))
			}
			fmt.Fprintf(&b, "    Ready:          %v\n    Restart Count:  %d\n", s.Ready, s.RestartCount)
			for _, pr := range []struct {
				name string
				p    *corev1.Probe
			}{{"Liveness", c.LivenessProbe}, {"Readiness", c.ReadinessProbe}, {"Startup", c.StartupProbe}} {
				if pr.p != nil {
					fmt.Fprintf(&b, "    %-10s      %s\n", pr.name+":", probeString(pr.p))
				}
			}
		}
	}
	section("Init Containers", p.Spec.InitContainers)
	section("Containers", p.Spec.Containers)
	b.WriteString("Conditions:\n")
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, "  %-26s %s\n", c.Type, c.Status)
	}
	evs, err := m.events(ctx, p.Namespace, p.Name)
	if err != nil {
		fmt.Fprintf(&b, "Events: %v\n", err)
		return b.String()
	}
	b.WriteString("Events:\n  Type     Reason     Count  From             Message\n")
	for _, e := range evs {
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		count := e.Count
		if count == 0 {
			count = 1
		}
		fmt.Fprintf(&b, "  %-8s %-10s %-6d %-16s %s\n", e.Type, e.Reason, count, from, e.Message)
	}
	return b.String()
}

// describeApp describes every pod matching selector (for failure messages).
func (m *mesh) describeApp(ctx context.Context, ns, selector string) string {
	ps, err := m.pods(ctx, ns, selector)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(m.describe(ctx, p))
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			if l, err := m.logs(ctx, p.Namespace, p.Name, c.Name, false); err == nil {
				fmt.Fprintf(&b, "--- logs %s -c %s (last 15 lines):\n%s\n", p.Name, c.Name, lastLines(l, 15))
			}
		}
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running"
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated (Reason: %s, Exit Code: %d)", s.Terminated.Reason, s.Terminated.ExitCode)
	case s.Waiting != nil:
		return fmt.Sprintf("Waiting (Reason: %s)", s.Waiting.Reason)
	}
	return "-"
}

// probeString is kubectl's probe line, e.g. "http-get http://:15020/app-health/web/livez delay=2s timeout=1s period=2s #success=1 #failure=3".
func probeString(p *corev1.Probe) string {
	var target string
	switch {
	case p.HTTPGet != nil:
		target = fmt.Sprintf("http-get %s://:%s%s", strings.ToLower(string(p.HTTPGet.Scheme)), p.HTTPGet.Port.String(), p.HTTPGet.Path)
		if p.HTTPGet.Scheme == "" {
			target = fmt.Sprintf("http-get http://:%s%s", p.HTTPGet.Port.String(), p.HTTPGet.Path)
		}
	case p.TCPSocket != nil:
		target = "tcp-socket :" + p.TCPSocket.Port.String()
	case p.GRPC != nil:
		target = fmt.Sprintf("grpc <pod>:%d", p.GRPC.Port)
	case p.Exec != nil:
		target = "exec " + strings.Join(p.Exec.Command, " ")
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d", target,
		p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
}

// poll calls f every 250 ms until it reports done or ctx ends; the error carries f's last word.
func poll(ctx context.Context, f func() (bool, string)) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		done, last := f()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %s)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// get reads url with the admin's client.
func (m *mesh) get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), err
}

var peerAuthGVR = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}

func mustPods(ctx context.Context, t *testing.T, m *mesh, ns, selector string) []corev1.Pod {
	t.Helper()
	ps, err := m.pods(ctx, ns, selector)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
