// Package kube holds the acceptance tests of `lucid discovery --kubernetes` against a real
// kube-apiserver (internal/testutil/kubetest): Kubernetes Services, EndpointSlices, Pods and Istio
// objects in, a connected in-process `lucid sidecar` routing to loopback backends out.
// Addresses: 127.0.98.0/24. Run alone with `go test -race ./test/kube/` after `make kube-bins`.
package kube

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/agent"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/kube"
	"github.com/lucid-mesh/lucid/internal/kube/install"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(kubetest.SharedMain(m),
		// klog's flush daemon and client-go's process-wide watchers live for the process.
		goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("k8s.io/client-go/util/workqueue.(*Typed[...]).updateUnfinishedWorkLoop"),
	)
}

var (
	podsGVR   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	eventsGVR = schema.GroupVersionResource{Version: "v1", Resource: "events"}
)

// env is one test's cluster access.
type env struct {
	t       *testing.T
	ctx     context.Context
	cluster *kubetest.Cluster
	dyn     dynamic.Interface // admin
	logs    *testutil.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	dyn, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, cluster: c, dyn: dyn, logs: &testutil.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lucid logs:\n%s", e.logs.String())
		}
	})
	return e
}

// namespace creates ns (with its default ServiceAccount); "default" exists already.
func (e *env) namespace(ns string) {
	e.t.Helper()
	if err := e.cluster.CreateNamespace(e.ctx, ns, nil); err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
}

// gvrs of the kinds the tests apply, for deleting them at cleanup.
var gvrs = map[string]schema.GroupVersionResource{
	"Service":         {Version: "v1", Resource: "services"},
	"ServiceAccount":  {Version: "v1", Resource: "serviceaccounts"},
	"EndpointSlice":   {Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	"VirtualService":  {Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"},
	"DestinationRule": {Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"},
	"Gateway":         {Group: "networking.istio.io", Version: "v1", Resource: "gateways"},
	"Secret":          {Version: "v1", Resource: "secrets"},
}

// apply server-side-applies YAML as the admin; the objects are deleted when the test
// ends (the shared cluster has no namespace controller to clean up after it).
func (e *env) apply(yamlDocs string) {
	e.t.Helper()
	if err := e.cluster.Apply(e.ctx, yamlDocs); err != nil {
		e.t.Fatalf("apply: %v\n%s", err, yamlDocs)
	}
	for _, doc := range strings.Split(yamlDocs, "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		if gvr, ok := gvrs[u.GetKind()]; ok && u.GetKind() != "ServiceAccount" {
			e.deleteAtEnd(gvr, u.GetNamespace(), u.GetName())
		}
	}
}

func (e *env) deleteAtEnd(gvr schema.GroupVersionResource, ns, name string) {
	e.t.Cleanup(func() {
		err := e.dyn.Resource(gvr).Namespace(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			e.t.Errorf("delete %s %s/%s: %v", gvr.Resource, ns, name, err)
		}
	})
}

// podIP is the cluster address of the pod whose local-mode address is local: the API
// server refuses loopback addresses in EndpointSlices, so the objects carry 10.98.0.x and
// the pods' lucid.dev/local-address annotation maps them back to 127.0.98.x. Nothing ever
// connects to a 10.98.0.x address.
func podIP(local string) string {
	return "10.98.0." + strings.TrimPrefix(local, "127.0.98.")
}

// pod creates a pod whose workload is at local (127.0.98.x) and gives it an IP and
// Running status, as kubelet would.
func (e *env) pod(ns, name, local string, labels map[string]string) {
	e.t.Helper()
	ip := podIP(local)
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": "example.com/app:1",
				"ports": []any{map[string]any{"name": "http", "containerPort": int64(9080)}}}},
			"automountServiceAccountToken": false,
		},
	}}
	u.SetLabels(labels)
	u.SetAnnotations(map[string]string{kube.LocalAddressAnnotation: local})
	created, err := e.dyn.Resource(podsGVR).Namespace(ns).Create(e.ctx, u, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	e.deleteAtEnd(podsGVR, ns, name)
	created.Object["status"] = map[string]any{
		"phase": "Running", "podIP": ip, "podIPs": []any{map[string]any{"ip": ip}},
	}
	if _, err := e.dyn.Resource(podsGVR).Namespace(ns).UpdateStatus(e.ctx, created, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("pod %s/%s status: %v", ns, name, err)
	}
}

// patchPod merge-patches a pod.
func (e *env) patchPod(ns, name, patch string) {
	e.t.Helper()
	if _, err := e.dyn.Resource(podsGVR).Namespace(ns).Patch(e.ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		e.t.Fatalf("patch pod %s/%s: %v", ns, name, err)
	}
}

// endpointSlice YAML for service svc in ns: one ready endpoint per pod (name → local
// address) on port, as the EndpointSlice controller would write it.
func endpointSlice(ns, svc, portName string, port int, pods map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %s-abcde
  namespace: %s
  labels: {kubernetes.io/service-name: %s}
addressType: IPv4
ports: [{name: %s, port: %d, protocol: TCP}]
endpoints:
`, svc, ns, svc, portName, port)
	for name, ip := range pods {
		fmt.Fprintf(&b, "- addresses: [%q]\n  conditions: {ready: true}\n  targetRef: {kind: Pod, namespace: %s, name: %s}\n", podIP(ip), ns, name)
	}
	return b.String()
}

// discovery starts `lucid discovery --kubernetes` in-process with exactly the permissions
// `lucid install` grants it (its ClusterRole), and returns its ADS address.
func (e *env) discovery(name string) string {
	e.t.Helper()
	cfg, err := e.cluster.ServiceAccountConfig(e.ctx, "istio-system", "lucid-discovery-test", install.DiscoveryClusterRules())
	if err != nil {
		e.t.Fatal(err)
	}
	clients, err := kubeclient.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan struct{})
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	go func() {
		defer close(done)
		err := discovery.Run(ctx, discovery.Options{
			GRPCAddr: "127.0.0.1:0", Logger: log, Ready: func(a string) { ready <- a },
			Kube: discovery.KubeOptions{Enabled: true, Clients: clients},
		})
		if err != nil {
			e.t.Errorf("discovery %s: %v", name, err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-ready:
		return a
	case <-done:
		e.t.Fatalf("discovery %s stopped", name)
	case <-time.After(30 * time.Second):
		e.t.Fatalf("discovery %s published no configuration within 30s", name)
	}
	return ""
}

// sidecar runs `lucid sidecar` in-process for pod ns/name at ip against ads, and waits
// until it is ready.
func (e *env) sidecar(ns, name, ip, ads string) { e.proxy(ns, name, ip, ads, false) }

// router runs `lucid gateway` (the agent in router mode) in-process for pod ns/name at
// ip against ads, and waits until it is ready.
func (e *env) router(ns, name, ip, ads string) { e.proxy(ns, name, ip, ads, true) }

func (e *env) proxy(ns, name, ip, ads string, router bool) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := agent.Run(ctx, agent.Options{
			IP: netip.MustParseAddr(ip), Workload: name, Namespace: ns, Discovery: ads,
			AdminPort: 15000, StatusPort: 15020, LogLevel: "info", LogOutput: e.logs,
			DrainDuration: 200 * time.Millisecond, AgentOptions: agent.AgentOptions{Router: router},
		})
		if err != nil {
			e.t.Errorf("proxy %s: %v", name, err)
		}
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	testutil.EventuallyWhy(e.t, 30*time.Second, "proxy "+name+" ready", func() (bool, string) {
		code, body := httpGet(nil, "http://"+net.JoinHostPort(ip, "15020")+"/healthz/ready")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
}

// backend serves HTTP on addr answering with its name.
func (e *env) backend(addr, answer string) {
	e.t.Helper()
	testutil.Backend(e.t, addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, answer)
	}))
}

// via returns an HTTP client that sends through the sidecar at ip (its :15001 proxy).
func via(ip string) *http.Client {
	u := &url.URL{Scheme: "http", Host: net.JoinHostPort(ip, "15001")}
	return &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true}, Timeout: 5 * time.Second}
}

func httpGet(c *http.Client, u string) (int, string) {
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// clusterHosts returns the hosts of one cluster in the sidecar's admin /clusters view.
func clusterHosts(ip, cluster string) ([]string, error) {
	code, body := httpGet(nil, "http://"+testutil.Admin(ip)+"/clusters")
	if code != http.StatusOK {
		return nil, fmt.Errorf("/clusters: %d %s", code, body)
	}
	var hosts []string
	for _, l := range strings.Split(body, "\n") {
		parts := strings.Split(l, "::")
		if len(parts) == 4 && parts[0] == cluster && parts[2] == "health_flags" {
			hosts = append(hosts, parts[1])
		}
	}
	return hosts, nil
}

// clusterNames returns every cluster name in the sidecar's /clusters view.
func clusterNames(ip string) []string {
	_, body := httpGet(nil, "http://"+testutil.Admin(ip)+"/clusters")
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if name, _, ok := strings.Cut(l, "::"); ok && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// events lists the LucidValidation Events on the object gvr ns/name (this incarnation of
// it: its UID).
func (e *env) events(gvr schema.GroupVersionResource, ns, kind, name string) []*unstructured.Unstructured {
	e.t.Helper()
	obj, err := e.dyn.Resource(gvr).Namespace(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	list, err := e.dyn.Resource(eventsGVR).Namespace(ns).List(e.ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name +
			",involvedObject.uid=" + string(obj.GetUID()) + ",reason=LucidValidation",
	})
	if err != nil {
		e.t.Fatalf("list events: %v", err)
	}
	out := make([]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out
}
