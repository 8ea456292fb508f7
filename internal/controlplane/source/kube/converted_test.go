package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// versioned gives an object the UID and resourceVersion the API server would.
func versioned[T interface {
	SetUID(types.UID)
	SetResourceVersion(string)
}](o T, uid, rv string) T {
	o.SetUID(types.UID(uid))
	o.SetResourceVersion(rv)
	return o
}

// byKind returns the objects of kind by name.
func byKind(objs []*config.Object, kind string) map[string]*config.Object {
	out := map[string]*config.Object{}
	for _, o := range objs {
		if o.Kind == kind {
			out[o.Name] = o
		}
	}
	return out
}

// Builds convert again only what changed: the same inputs give the very same objects, a
// changed slice, pod or Service gives new ones exactly where it is read.
func TestBuildsConvertOnlyWhatChanged(t *testing.T) {
	svc := versioned(reviewsService(), "svc-reviews", "1")
	other := versioned(reviewsService(), "svc-ratings", "1")
	other.Name, other.Spec.Selector = "ratings", map[string]string{"app": "ratings"}
	p1 := versioned(pod("reviews-1", "127.0.98.21", map[string]string{"app": "reviews", "version": "v1"}), "pod-1", "1")
	p2 := versioned(pod("ratings-1", "127.0.98.22", map[string]string{"app": "ratings"}), "pod-2", "1")
	sl := versioned(slice("reviews-abc", "reviews", 9080, endpoint("127.0.98.21", "reviews-1", true)), "slice-1", "1")
	reg := &registry{services: []*corev1.Service{svc, other}, pods: []*corev1.Pod{p1, p2},
		slices: []*discoveryv1.EndpointSlice{sl}, conv: &converted{}}
	build := func() (map[string]*config.Object, map[string]*config.Object) {
		objs, diags := reg.objects()
		if len(diags) > 0 {
			t.Fatal(diags)
		}
		return byKind(objs, model.KindKubernetesService), byKind(objs, model.KindPod)
	}
	svcs, pods := build()
	again, againPods := build()
	if again["reviews"] != svcs["reviews"] || againPods["reviews-1"] != pods["reviews-1"] {
		t.Fatal("nothing changed, yet the objects were converted again")
	}

	// No Pod, Service or Namespace changed (the Source's count): the pods are not even
	// looked at again.
	reg.podsAsBefore = true
	_, reused := build()
	if reused["reviews-1"] != pods["reviews-1"] || len(reused) != len(pods) {
		t.Fatal("the last build's pods were not reused")
	}
	reg.podsAsBefore = false

	// The slice changes: the reviews Service is converted again, nothing else.
	sl2 := versioned(slice("reviews-abc", "reviews", 9080, endpoint("127.0.98.21", "reviews-1", true), endpoint("127.0.98.23", "", true)), "slice-1", "2")
	reg.slices = []*discoveryv1.EndpointSlice{sl2}
	svcs2, pods2 := build()
	if svcs2["reviews"] == svcs["reviews"] || svcs2["reviews"].Generation == svcs["reviews"].Generation {
		t.Fatal("a changed EndpointSlice did not change its Service")
	}
	if svcs2["ratings"] != svcs["ratings"] || pods2["reviews-1"] != pods["reviews-1"] {
		t.Fatal("a slice change converted objects that do not read it")
	}

	// The pod behind an endpoint changes its labels: its Service and the pod change.
	p1b := versioned(pod("reviews-1", "127.0.98.21", map[string]string{"app": "reviews", "version": "v2"}), "pod-1", "2")
	reg.pods = []*corev1.Pod{p1b, p2}
	svcs3, pods3 := build()
	if svcs3["reviews"].Generation == svcs2["reviews"].Generation || pods3["reviews-1"] == pods2["reviews-1"] {
		t.Fatal("a pod's new labels did not reach its Service's endpoints and its workload")
	}
	if pods3["ratings-1"] != pods2["ratings-1"] || svcs3["ratings"] != svcs2["ratings"] {
		t.Fatal("a pod change converted objects that do not read it")
	}

	// A Service of the namespace changes its named target port: the pods resolve it again.
	svc2 := versioned(reviewsService(), "svc-reviews", "2")
	svc2.Spec.Ports[0].Name = "http-web"
	svc2.Spec.Ports[0].TargetPort = intstr.FromString("web")
	reg.services = []*corev1.Service{svc2, other}
	_, pods4 := build()
	if pods4["reviews-1"] == pods3["reviews-1"] {
		t.Fatal("a Service change did not convert the pods whose named ports it resolves")
	}
	if got := pods4["reviews-1"].Spec.(interface{ GetPorts() map[string]uint32 }).GetPorts(); got["http-web"] != 9080 {
		t.Fatalf("pod ports after the Service change: %v", got)
	}

	// Objects without versions (not from an API server) are converted every time.
	reg.services = []*corev1.Service{versioned(reviewsService(), "svc-reviews", "")}
	a, _ := build()
	b, _ := build()
	if a["reviews"] == b["reviews"] {
		t.Fatal("an object without a resourceVersion was taken from the last build")
	}
}
