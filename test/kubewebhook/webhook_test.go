// Package kubewebhook tests the sidecar injection webhook and the probe-failure Events
// against a real kube-apiserver (internal/testutil/kubetest): `lucid discovery --webhook-addr` with
// the RBAC `lucid install` grants, a MutatingWebhookConfiguration pointing at it by url
// and the caBundle Lucid patches in. Addresses: 127.0.99.0/24.
package kubewebhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
	"github.com/lucid-mesh/lucid/internal/kube/webhook"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(kubetest.SharedMain(m),
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
	)
}

const (
	cpIP    = "127.0.99.20" // discovery: ADS and the webhook
	podIP   = "127.0.99.30" // the injected pod's sidecar (in-process agent)
	probeIP = "127.0.99.36" // the sidecar's probe source (127.0.0.6 in a pod)
)

var (
	podsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}
	nsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	saGVR     = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	mwcGVR    = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
)

// TestInjectionAndProbeEvents is the acceptance path: the webhook gets its caBundle,
// injects a labelled namespace's pod (sidecar, rewritten probe, ISTIO_KUBE_APP_PROBERS),
// leaves an unlabelled namespace's pod and a kube-system pod alone, re-patches a reset
// caBundle, and a probe failure the in-process sidecar sees becomes a Warning Event on
// the pod.
func TestInjectionAndProbeEvents(t *testing.T) {
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}

	// The control plane's identity has exactly the rules `lucid install` grants it.
	cpCfg, err := c.ServiceAccountConfig(ctx, install.DefaultNamespace, install.Name, installRules())
	if err != nil {
		t.Fatal(err)
	}
	cpClients, err := kubeclient.New(cpCfg)
	if err != nil {
		t.Fatal(err)
	}

	port := freePort(t, cpIP)
	createWebhookConfig(ctx, t, admin, fmt.Sprintf("https://%s:%d/inject", cpIP, port))

	ads := startDiscovery(t, discovery.Options{
		ConfigDir: t.TempDir(), GRPCAddr: cpIP + ":0", Debounce: 10 * time.Millisecond,
		Kube: discovery.KubeOptions{Clients: cpClients},
		Webhook: discovery.WebhookOptions{
			Addr: fmt.Sprintf("%s:%d", cpIP, port), Namespace: install.DefaultNamespace,
			Inject: inject.Config{Image: "lucid:test"}, ExtraHosts: []string{cpIP},
			CheckInterval: 100 * time.Millisecond, EventMinInterval: 100 * time.Millisecond,
		},
	})

	bundle := waitCABundle(ctx, t, admin)
	secret, err := admin.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(install.DefaultNamespace).
		Get(ctx, discovery.DefaultCASecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("CA secret: %v", err)
	}
	if data, _, _ := unstructured.NestedString(secret.Object, "data", "ca-cert.pem"); data != bundle {
		t.Fatal("the caBundle is not the CA stored in the Secret")
	}
	// A second replica starting now uses the same CA, so the caBundle stays valid for both.
	ca2, created, err := webhook.LoadOrCreateCA(ctx, cpClients.Dynamic, install.DefaultNamespace, discovery.DefaultCASecret, 0)
	if err != nil || created || base64.StdEncoding.EncodeToString(ca2.CertPEM()) != bundle {
		t.Fatalf("second replica's CA: created=%v err=%v, want the stored one", created, err)
	}

	mustNamespace(ctx, t, c, "inj", map[string]string{"istio-injection": "enabled"})
	mustNamespace(ctx, t, c, "plain", nil)
	// kube-system exists; label it so the API server calls the webhook, which must refuse
	// to inject there anyway.
	labelNamespace(ctx, t, admin, "kube-system", map[string]string{"istio-injection": "enabled"})
	ensureDefaultSA(ctx, t, admin, "kube-system")

	injected := createPod(ctx, t, admin, jettyPod("inj", "jetty-1"))
	checkInjected(t, injected)
	for _, ns := range []string{"plain", "kube-system"} {
		p := createPod(ctx, t, admin, jettyPod(ns, "jetty-"+ns))
		if container(p, inject.ProxyContainerName) != nil {
			t.Errorf("pod in namespace %s was injected", ns)
		}
		if lp := container(p, "jetty").LivenessProbe; lp.HTTPGet.Path != "/ok.jsp" {
			t.Errorf("pod in namespace %s: probe rewritten to %s", ns, lp.HTTPGet.Path)
		}
	}

	// Someone resets the caBundle: Lucid patches it back and injection keeps working.
	resetCABundle(ctx, t, admin)
	if got := waitCABundle(ctx, t, admin); got != bundle {
		t.Fatal("the caBundle was re-patched with another CA")
	}
	checkInjected(t, createPod(ctx, t, admin, jettyPod("inj", "jetty-2")))

	// The sidecar of jetty-1 runs here, probing an app that refuses connections.
	probers, _ := envOf(container(injected, inject.ProxyContainerName), inject.EnvAppProbers)
	runSidecar(t, "inj", "jetty-1", ads, probers)
	kubeletProbe(t, "/app-health/jetty/livez")
	ev := waitEvent(ctx, t, admin, "inj", "jetty-1")
	msg, _, _ := unstructured.NestedString(ev.Object, "message")
	reason, _, _ := unstructured.NestedString(ev.Object, "reason")
	typ, _, _ := unstructured.NestedString(ev.Object, "type")
	uid, _, _ := unstructured.NestedString(ev.Object, "involvedObject", "uid")
	if typ != "Warning" || reason != "Unhealthy" || uid != string(injected.UID) ||
		!strings.HasPrefix(msg, "Liveness probe failed: ") || !strings.Contains(msg, "refused") || !strings.Contains(msg, "container jetty") {
		t.Fatalf("event type=%s reason=%s uid=%s (pod %s) message=%q", typ, reason, uid, injected.UID, msg)
	}
	// The same failure again (after a recovery) is aggregated into the same Event.
	app := serveApp(t, podIP+":8080")
	kubeletProbe(t, "/app-health/jetty/livez")
	app.Close()
	kubeletProbe(t, "/app-health/jetty/livez")
	testutil.EventuallyWhy(t, 30*time.Second, "event count 2", func() (bool, string) {
		list := podEvents(ctx, t, admin, "inj", "jetty-1")
		if len(list) != 1 {
			return false, fmt.Sprintf("%d events", len(list))
		}
		n, _, _ := unstructured.NestedInt64(list[0].Object, "count")
		return n == 2, fmt.Sprintf("count %d", n)
	})
}

// installRules are the control plane's rules from `lucid install` (ClusterRole and the
// namespaced Role, granted cluster-wide here).
func installRules() []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	for _, o := range install.Objects(install.Options{Image: "lucid:test"}) {
		switch r := o.(type) {
		case *rbacv1.ClusterRole:
			rules = append(rules, r.Rules...)
		case *rbacv1.Role:
			rules = append(rules, r.Rules...)
		}
	}
	return rules
}

// createWebhookConfig creates install's MutatingWebhookConfiguration, pointed at url.
func createWebhookConfig(ctx context.Context, t *testing.T, admin dynamic.Interface, url string) {
	t.Helper()
	for _, o := range install.Objects(install.Options{Image: "lucid:test"}) {
		mwc, ok := o.(*admissionv1.MutatingWebhookConfiguration)
		if !ok {
			continue
		}
		for i := range mwc.Webhooks {
			mwc.Webhooks[i].ClientConfig = admissionv1.WebhookClientConfig{URL: &url}
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mwc)
		if err != nil {
			t.Fatal(err)
		}
		_, err = admin.Resource(mwcGVR).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create MutatingWebhookConfiguration: %v", err)
		}
		t.Cleanup(func() {
			_ = admin.Resource(mwcGVR).Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})
		})
		return
	}
	t.Fatal("install renders no MutatingWebhookConfiguration")
}

// waitCABundle waits until every webhook carries the same non-empty caBundle.
func waitCABundle(ctx context.Context, t *testing.T, admin dynamic.Interface) string {
	t.Helper()
	var bundle string
	testutil.EventuallyWhy(t, 30*time.Second, "caBundle patched", func() (bool, string) {
		u, err := admin.Resource(mwcGVR).Get(ctx, install.WebhookConfig, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		bundle = ""
		for _, h := range hooks {
			b, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "caBundle")
			if b == "" || (bundle != "" && b != bundle) {
				return false, "caBundle missing or differing"
			}
			bundle = b
		}
		return bundle != "", "no webhooks"
	})
	pem, err := base64.StdEncoding.DecodeString(bundle)
	if err != nil || !bytes.Contains(pem, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("caBundle is not a PEM certificate: %v", err)
	}
	return bundle
}

func resetCABundle(ctx context.Context, t *testing.T, admin dynamic.Interface) {
	t.Helper()
	patch := `[{"op":"remove","path":"/webhooks/0/clientConfig/caBundle"},{"op":"remove","path":"/webhooks/2/clientConfig/caBundle"}]`
	if _, err := admin.Resource(mwcGVR).Patch(ctx, install.WebhookConfig, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("reset caBundle: %v", err)
	}
}

func startDiscovery(t *testing.T, o discovery.Options) string {
	t.Helper()
	var logs testutil.Buffer
	o.Logger = newLogger(&logs)
	ready := make(chan string, 1)
	o.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- discovery.Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("discovery: %v", err)
		}
		if t.Failed() {
			t.Logf("discovery logs:\n%s", logs.String())
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatalf("discovery stopped: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("discovery not ready in 30 s\n%s", logs.String())
	}
	return ""
}

func runSidecar(t *testing.T, ns, pod, ads, probers string) {
	t.Helper()
	var logs testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := agent.Run(ctx, agent.Options{
			IP: netip.MustParseAddr(podIP), Workload: pod, Namespace: ns, Discovery: ads,
			AdminPort: 15000, StatusPort: 15020, LogOutput: &logs, DrainDuration: 100 * time.Millisecond,
			AgentOptions: agent.AgentOptions{AppProbers: probers, ProbeSourceV4: netip.MustParseAddr(probeIP)},
		})
		if err != nil {
			t.Errorf("sidecar: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("sidecar logs:\n%s", logs.String())
		}
	})
	testutil.EventuallyWhy(t, 30*time.Second, "sidecar status server up", func() (bool, string) {
		resp, err := http.Get("http://" + podIP + ":15020/healthz/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, ""
	})
}

// kubeletProbe sends the kubelet's rewritten probe to the sidecar's status port.
func kubeletProbe(t *testing.T, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+podIP+":15020"+path, nil)
	req.Header.Set("User-Agent", "kube-probe/1.36")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("probe %s: %v", path, err)
	}
	resp.Body.Close()
}

func waitEvent(ctx context.Context, t *testing.T, admin dynamic.Interface, ns, pod string) *unstructured.Unstructured {
	t.Helper()
	var ev *unstructured.Unstructured
	testutil.EventuallyWhy(t, 30*time.Second, "probe-failure event on "+ns+"/"+pod, func() (bool, string) {
		list := podEvents(ctx, t, admin, ns, pod)
		if len(list) == 0 {
			return false, "no events"
		}
		ev = &list[0]
		return true, ""
	})
	return ev
}

// podEvents lists the events kubectl describe pod shows: by involvedObject.
func podEvents(ctx context.Context, t *testing.T, admin dynamic.Interface, ns, pod string) []unstructured.Unstructured {
	t.Helper()
	l, err := admin.Resource(eventsGVR).Namespace(ns).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return l.Items
}

func jettyPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "jetty"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "jetty", Image: "jetty:9",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/ok.jsp", Port: intstr.FromString("http")}}, TimeoutSeconds: 2},
		}}},
	}
}

// createPod creates p through the API (the webhook runs) and returns the stored pod.
func createPod(ctx context.Context, t *testing.T, admin dynamic.Interface, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := admin.Resource(podsGVR).Namespace(p.Namespace).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	var stored corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(out.Object, &stored); err != nil {
		t.Fatal(err)
	}
	return &stored
}

func checkInjected(t *testing.T, p *corev1.Pod) {
	t.Helper()
	proxy := container(p, inject.ProxyContainerName)
	if proxy == nil {
		t.Fatalf("pod %s/%s not injected: containers %v", p.Namespace, p.Name, names(p))
	}
	lp := container(p, "jetty").LivenessProbe
	if lp.HTTPGet == nil || lp.HTTPGet.Path != "/app-health/jetty/livez" || lp.HTTPGet.Port.IntValue() != 15020 {
		t.Fatalf("liveness probe not rewritten: %+v", lp.HTTPGet)
	}
	probers, ok := envOf(proxy, inject.EnvAppProbers)
	var m map[string]json.RawMessage
	if !ok || json.Unmarshal([]byte(probers), &m) != nil || !strings.Contains(string(m["/app-health/jetty/livez"]), `"/ok.jsp"`) ||
		!strings.Contains(string(m["/app-health/jetty/livez"]), "8080") {
		t.Fatalf("%s = %q", inject.EnvAppProbers, probers)
	}
	if p.Annotations[inject.AnnotationStatus] == "" || p.Labels["security.istio.io/tlsMode"] != "istio" {
		t.Errorf("status annotation or tlsMode label missing: %v %v", p.Annotations, p.Labels)
	}
}

func container(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == name {
			return &p.Spec.InitContainers[i]
		}
	}
	return nil
}

func names(p *corev1.Pod) []string {
	var out []string
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		out = append(out, c.Name)
	}
	return out
}

func envOf(c *corev1.Container, name string) (string, bool) {
	if c == nil {
		return "", false
	}
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func mustNamespace(ctx context.Context, t *testing.T, c *kubetest.Cluster, name string, labels map[string]string) {
	t.Helper()
	if err := c.CreateNamespace(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
}

func labelNamespace(ctx context.Context, t *testing.T, admin dynamic.Interface, name string, labels map[string]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if _, err := admin.Resource(nsGVR).Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		t.Fatalf("label namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		off, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{"istio-injection": nil}}})
		_, _ = admin.Resource(nsGVR).Patch(context.Background(), name, types.MergePatchType, off, metav1.PatchOptions{})
	})
}

// ensureDefaultSA creates ns's default ServiceAccount (no controller manager runs here).
func ensureDefaultSA(ctx context.Context, t *testing.T, admin dynamic.Interface, ns string) {
	t.Helper()
	sa := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"name": "default", "namespace": ns}}}
	if _, err := admin.Resource(saGVR).Namespace(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("service account %s/default: %v", ns, err)
	}
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveApp is the app answering 200 on addr.
func serveApp(t *testing.T, addr string) *http.Server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func newLogger(w *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
