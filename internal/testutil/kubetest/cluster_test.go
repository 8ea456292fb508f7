package kubetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(SharedMain(m)) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func dyn(t *testing.T, c *Cluster) dynamic.Interface {
	t.Helper()
	d, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestNamespaceRoundTrip(t *testing.T) {
	c := Shared(t)
	ctx := ctxT(t)
	if err := c.CreateNamespace(ctx, "round-trip", map[string]string{"istio-injection": "enabled"}); err != nil {
		t.Fatal(err)
	}
	d := dyn(t, c)
	ns, err := d.Resource(Namespaces).Get(ctx, "round-trip", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.GetLabels()["istio-injection"]; got != "enabled" {
		t.Errorf("label istio-injection = %q, want enabled (labels %v)", got, ns.GetLabels())
	}
	if _, err := d.Resource(ServiceAccounts).Namespace("round-trip").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("default service account: %v", err)
	}
	// A second create is refused: the namespace really is stored.
	if err := c.CreateNamespace(ctx, "round-trip", nil); !apierrors.IsAlreadyExists(errors.Unwrap(err)) {
		t.Errorf("second CreateNamespace: %v, want AlreadyExists", err)
	}
}

func TestKubeconfigFile(t *testing.T) {
	c := Shared(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resource(Namespaces).Get(ctxT(t), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("get namespace default through the kubeconfig: %v", err)
	}
}

func TestCRDsServed(t *testing.T) {
	c := Shared(t)
	ctx := ctxT(t)
	if err := c.InstallCRDs(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateNamespace(ctx, "crds", nil); err != nil {
		t.Fatal(err)
	}
	d := dyn(t, c)
	list, err := d.Resource(VirtualServices).Namespace("crds").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list VirtualServices: %v", err)
	}
	if len(list.Items) != 0 {
		t.Fatalf("fresh namespace has %d VirtualServices", len(list.Items))
	}
	err = c.Apply(ctx, `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: crds}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := d.Resource(VirtualServices).Namespace("crds").Get(ctx, "reviews", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts")
	if len(hosts) != 1 || hosts[0] != "reviews" {
		t.Errorf("stored spec.hosts = %v", hosts)
	}
	// Every Istio kind is served.
	for _, r := range []string{"destinationrules", "serviceentries", "workloadentries", "gateways", "sidecars", "peerauthentications", "authorizationpolicies"} {
		group := "networking.istio.io"
		if strings.HasSuffix(r, "policies") || strings.HasPrefix(r, "peer") {
			group = "security.istio.io"
		}
		gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: r}
		if _, err := d.Resource(gvr).Namespace("crds").List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("list %s: %v", gvr, err)
		}
	}
}

func TestServiceAccountIdentity(t *testing.T) {
	c := Shared(t)
	ctx := ctxT(t)
	cfg, err := c.ServiceAccountConfig(ctx, "sa-test", "reader", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Resource(Namespaces).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("granted list namespaces: %v", err)
	}
	_, err = d.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("sa-test").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("list secrets without a grant: %v, want Forbidden", err)
	}
	if !strings.Contains(err.Error(), "system:serviceaccount:sa-test:reader") {
		t.Errorf("forbidden error does not name the identity: %v", err)
	}
}

// assertStopLeavesNothing stops c and checks that every process ended and Dir is gone.
func assertStopLeavesNothing(t *testing.T, c *Cluster, wantProcs int) {
	t.Helper()
	pids := c.pids()
	if len(pids) != wantProcs {
		t.Errorf("pids = %v, want %d processes", pids, wantProcs)
	}
	c.Stop()
	c.Stop() // idempotent
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop: %v", c.Dir, err)
	}
}

// fakeTB records RequireBinaries' verdict.
type fakeTB struct {
	testing.TB
	verdict string
}

type stopped struct{}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Fatal(args ...any) { f.verdict = "fatal"; panic(stopped{}) }
func (f *fakeTB) Skip(args ...any)  { f.verdict = "skip"; panic(stopped{}) }

func requireVerdict(t *testing.T) string {
	t.Helper()
	f := &fakeTB{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != (stopped{}) {
				panic(r)
			}
		}()
		RequireBinaries(f)
	}()
	return f.verdict
}

func TestRequireBinaries(t *testing.T) {
	t.Setenv("LUCID_KUBE_BIN", t.TempDir())
	t.Setenv("CI", "")
	if v := requireVerdict(t); v != "skip" {
		t.Errorf("missing binaries outside CI: %q, want skip", v)
	}
	t.Setenv("CI", "true")
	if v := requireVerdict(t); v != "fatal" {
		t.Errorf("missing binaries under CI: %q, want fatal", v)
	}
	_, err := Start(context.Background(), Options{})
	if err == nil || !strings.Contains(err.Error(), "make kube-bins") {
		t.Errorf("Start without binaries: %v, want a hint to run make kube-bins", err)
	}
}

func TestBinDir(t *testing.T) {
	t.Setenv("LUCID_KUBE_BIN", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got, want := BinDir(), "/x/lucid/kube/"+KubeVersion; got != want {
		t.Errorf("BinDir = %q, want %q", got, want)
	}
	t.Setenv("LUCID_KUBE_BIN", "/y")
	if got := BinDir(); got != "/y" {
		t.Errorf("BinDir with LUCID_KUBE_BIN = %q", got)
	}
}

// TestKubeVersionMatchesModule keeps KubeVersion (the cache directory) equal to the
// k8s.io/kubernetes version scripts/kube-bins.sh builds.
func TestKubeVersionMatchesModule(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "test", "kubebin", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("test/kubebin/go.mod does not require k8s.io/kubernetes")
	}
	if string(m[1]) != KubeVersion {
		t.Errorf("test/kubebin builds k8s.io/kubernetes %s, KubeVersion is %s", m[1], KubeVersion)
	}
}

// TestStartFailureShowsLog: an API server that cannot start is reported with the end of its
// log, which names the problem.
func TestStartFailureShowsLog(t *testing.T) {
	RequireBinaries(t)
	_, err := Start(context.Background(), Options{APIServerArgs: []string{"--no-such-flag=1"}})
	if err == nil {
		t.Fatal("Start with a bad flag succeeded")
	}
	for _, want := range []string{"kube-apiserver exited before it was ready", "kube-apiserver.log ends", "no-such-flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
}
