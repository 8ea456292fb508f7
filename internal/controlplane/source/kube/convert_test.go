package kube

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
)

func ptr[T any](v T) *T { return &v }

func pod(name, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: labels},
		Spec: corev1.PodSpec{ServiceAccountName: "bookinfo-reviews", Containers: []corev1.Container{{
			Name: "app", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9080}},
		}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
}

func reviewsService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.96.0.20", Selector: map[string]string{"app": "reviews"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 9080, TargetPort: intstr.FromString("web")}},
		},
	}
}

func slice(name, svc string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func endpoint(ip, podName string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: podName},
	}
}

const reviewsDR = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
`

// clusterEndpoints returns "ip:port" of every endpoint of the named cluster as a sidecar
// in namespace default sees it.
func clusterEndpoints(t *testing.T, objs []*config.Object, cluster string) []string {
	t.Helper()
	m, _ := model.Build(objs, nil)
	p, err := model.ParseNodeID("sidecar~127.0.98.50~productpage-1.default~default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	res := translate.Generate(m, m.ResolveProxy(p))
	var clusters []string
	for _, e := range res.Endpoints {
		cla := e.(*endpointpb.ClusterLoadAssignment)
		clusters = append(clusters, cla.GetClusterName())
		if cla.GetClusterName() != cluster {
			continue
		}
		out := []string{}
		for _, l := range cla.GetEndpoints() {
			for _, le := range l.GetLbEndpoints() {
				sa := le.GetEndpoint().GetAddress().GetSocketAddress()
				out = append(out, fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()))
			}
		}
		slices.Sort(out)
		return out
	}
	t.Fatalf("no cluster %q; clusters: %v", cluster, clusters)
	return nil
}

func TestServiceBecomesIstioClusters(t *testing.T) {
	dr, diags := config.Parse("reviews-dr.yaml", []byte(reviewsDR))
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	reg := &registry{
		services: []*corev1.Service{reviewsService()},
		pods: []*corev1.Pod{
			pod("reviews-v1-a", "127.0.98.11", map[string]string{"app": "reviews", "version": "v1"}),
			pod("reviews-v2-a", "127.0.98.12", map[string]string{"app": "reviews", "version": "v2"}),
			pod("reviews-v1-b", "127.0.98.13", map[string]string{"app": "reviews", "version": "v1"}),
		},
		slices: []*discoveryv1.EndpointSlice{slice("reviews-abc", "reviews", 9080,
			endpoint("127.0.98.11", "reviews-v1-a", true),
			endpoint("127.0.98.12", "reviews-v2-a", true),
			endpoint("127.0.98.13", "reviews-v1-b", false), // not ready: left out
		)},
	}
	objs, kdiags := reg.objects()
	if len(kdiags) > 0 {
		t.Fatal(kdiags)
	}
	objs = append(objs, dr...)

	const host = "reviews.default.svc.cluster.local"
	for cluster, want := range map[string][]string{
		"outbound|9080||" + host:   {"127.0.98.11:9080", "127.0.98.12:9080"},
		"outbound|9080|v1|" + host: {"127.0.98.11:9080"},
		"outbound|9080|v2|" + host: {"127.0.98.12:9080"},
	} {
		if got := clusterEndpoints(t, objs, cluster); !slices.Equal(got, want) {
			t.Errorf("%s: endpoints %v, want %v", cluster, got, want)
		}
	}

	// publishNotReadyAddresses keeps the not-ready endpoint.
	reg.services[0].Spec.PublishNotReadyAddresses = true
	objs, _ = reg.objects()
	objs = append(objs, dr...)
	if got, want := clusterEndpoints(t, objs, "outbound|9080|v1|"+host), []string{"127.0.98.11:9080", "127.0.98.13:9080"}; !slices.Equal(got, want) {
		t.Errorf("with publishNotReadyAddresses: v1 endpoints %v, want %v", got, want)
	}

	// The model sees the pod as the endpoint's workload, with its labels and service account.
	m, _ := model.Build(objs, nil)
	eps := m.Endpoints(host, 9080)
	if len(eps) == 0 || eps[0].Workload != "reviews-v1-a" || eps[0].ServiceAccount != "bookinfo-reviews" || eps[0].Labels["version"] != "v1" {
		t.Errorf("first endpoint = %+v, want workload reviews-v1-a, service account bookinfo-reviews, version v1", eps[0])
	}
	// A pod's sidecar resolves to its labels, and serves the service's port inbound on the
	// named target port.
	w := m.Workload(&model.Proxy{Name: "reviews-v2-a", Namespace: "default"})
	if w == nil || w.Labels["version"] != "v2" {
		t.Fatalf("workload of pod reviews-v2-a = %+v", w)
	}
	if in := m.InboundPorts(w); len(in) != 1 || in[0].Port != 9080 || in[0].Protocol != "HTTP" {
		t.Errorf("inbound ports of reviews-v2-a = %+v, want 9080 HTTP", in)
	}
}

func TestLabelChangeMovesEndpointOutOfSubset(t *testing.T) {
	dr, _ := config.Parse("", []byte(reviewsDR))
	p := pod("reviews-v1-a", "127.0.98.11", map[string]string{"app": "reviews", "version": "v1"})
	reg := &registry{
		services: []*corev1.Service{reviewsService()},
		pods:     []*corev1.Pod{p},
		slices:   []*discoveryv1.EndpointSlice{slice("reviews-abc", "reviews", 9080, endpoint("127.0.98.11", "reviews-v1-a", true))},
	}
	before, _ := reg.objects()
	p.Labels = map[string]string{"app": "reviews"}
	after, _ := reg.objects()
	if before[0].Generation == after[0].Generation {
		t.Errorf("the Service's generation did not change when its pod's labels did")
	}
	const v1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
	if got := clusterEndpoints(t, append(before, dr...), v1); len(got) != 1 {
		t.Errorf("before: %s endpoints %v, want 1", v1, got)
	}
	if got := clusterEndpoints(t, append(after, dr...), v1); len(got) != 0 {
		t.Errorf("after: %s endpoints %v, want none", v1, got)
	}
}

const badVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bad
  namespace: default
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
    timeout: 5 seconds
`

// TestInvalidIstioObjectSameMessageAsFile: the message for an Istio object from
// Kubernetes is the file mode's, without the file and line.
func TestInvalidIstioObjectSameMessageAsFile(t *testing.T) {
	_, fileDiags := config.Parse("bad.yaml", []byte(badVS))
	if len(fileDiags) == 0 {
		t.Fatal("file mode accepted the bad VirtualService")
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(badVS), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetUID("uid-1")
	u.SetResourceVersion("7")
	u.SetGeneration(1)
	p := newParser()
	key := "VirtualService default/bad"
	objs, diags, results := p.istioObjects(map[string]istioItem{key: {kind: config.KindVirtualService, obj: &u}})
	if len(objs) != 0 {
		t.Errorf("the bad VirtualService was accepted: %v", objs)
	}
	if len(diags) != len(fileDiags) {
		t.Fatalf("kube diagnostics %v, file diagnostics %v", diags, fileDiags)
	}
	for i := range diags {
		want := strings.TrimPrefix(fileDiags[i].String(), fmt.Sprintf("bad.yaml:%d: ", fileDiags[i].Line))
		if got := diags[i].String(); got != want {
			t.Errorf("kube message %q, want the file message without its place: %q", got, want)
		}
		if !strings.HasPrefix(diags[i].String(), "VirtualService default/bad: spec.http[0].timeout: ") {
			t.Errorf("message %q does not name the object and field", diags[i].String())
		}
	}
	if results[key] == nil || len(results[key].diags) == 0 {
		t.Errorf("no parse result to report for %s", key)
	}

	// A later good version is served; a bad one after it keeps the good one serving.
	good := u.DeepCopy()
	good.SetResourceVersion("8")
	good.Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any)["timeout"] = "5s"
	if objs, diags, _ := p.istioObjects(map[string]istioItem{key: {kind: config.KindVirtualService, obj: good}}); len(objs) != 1 || len(diags) != 0 {
		t.Fatalf("good version: objects %v, diagnostics %v", objs, diags)
	}
	bad := u.DeepCopy()
	bad.SetResourceVersion("9")
	objs, diags, _ = p.istioObjects(map[string]istioItem{key: {kind: config.KindVirtualService, obj: bad}})
	if len(objs) != 1 || objs[0].Generation == "" {
		t.Errorf("the last good version does not keep serving: %v", objs)
	}
	if last := diags[len(diags)-1]; last.Level != config.Warning || !strings.Contains(last.Message, "last good") {
		t.Errorf("no keeping-last-good warning: %v", diags)
	}
}

func TestSameContent(t *testing.T) {
	a := pod("p", "127.0.98.1", map[string]string{"version": "v1"})
	b := a.DeepCopy()
	b.ResourceVersion = "2"
	if !sameContent(a, b) {
		t.Error("a resourceVersion-only change counts as a change")
	}
	b.Labels["version"] = "v2"
	if sameContent(a, b) {
		t.Error("a label change does not count as a change")
	}
}
