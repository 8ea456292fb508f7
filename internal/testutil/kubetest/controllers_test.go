package kubetest

import (
	"context"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

// sliceEndpoints is "address ready=bool" for each endpoint of a Service's EndpointSlices.
func sliceEndpoints(ctx context.Context, d dynamic.Interface, ns, svc string) ([]string, error) {
	list, err := d.Resource(endpointSlices).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list.Items {
		eps, _, _ := unstructured.NestedSlice(s.Object, "endpoints")
		for _, e := range eps {
			m, _ := e.(map[string]any)
			addrs, _, _ := unstructured.NestedStringSlice(m, "addresses")
			ready, _, _ := unstructured.NestedBool(m, "conditions", "ready")
			for _, a := range addrs {
				out = append(out, fmt.Sprintf("%s ready=%v", a, ready))
			}
		}
	}
	return out, nil
}

// TestControllers: with EndpointControllers, a namespace gets its default ServiceAccount,
// a Service with a running Pod gets an EndpointSlice that follows the Pod's readiness, a
// deleted namespace goes away, and Stop leaves no process and no directory behind.
func TestControllers(t *testing.T) {
	c := New(t, Options{Controllers: EndpointControllers})
	ctx := ctxT(t)
	d := dyn(t, c)
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "ctl"}}}
	if _, err := d.Resource(Namespaces).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() (bool, error) {
		_, err := d.Resource(ServiceAccounts).Namespace("ctl").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("the serviceaccount controller made no default ServiceAccount: %v", err)
	}

	// A documentation address (TEST-NET-1): EndpointSlices refuse loopback addresses, and
	// nothing here dials it.
	const ip = "192.0.2.10"
	err := c.Apply(ctx, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: ctl}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: ctl, labels: {app: web}}
spec:
  containers: [{name: app, image: web, ports: [{containerPort: 8080}]}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RunPod(ctx, "ctl", "web-1", ip); err != nil {
		t.Fatal(err)
	}
	waitEndpoints := func(want string) {
		t.Helper()
		var got []string
		err := poll(ctx, func() (bool, error) {
			var err error
			got, err = sliceEndpoints(ctx, d, "ctl", "web")
			return len(got) == 1 && got[0] == want, err
		})
		if err != nil {
			t.Fatalf("EndpointSlices of ctl/web: %v, want [%s]: %v", got, want, err)
		}
	}
	waitEndpoints(ip + " ready=true")
	if err := c.SetPodReady(ctx, "ctl", "web-1", false); err != nil {
		t.Fatal(err)
	}
	waitEndpoints(ip + " ready=false")

	// Gone Pod, gone endpoint; then the namespace (with its Service and slices) can go.
	if err := c.DeletePod(ctx, "ctl", "web-1"); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() (bool, error) {
		got, err := sliceEndpoints(ctx, d, "ctl", "web")
		return len(got) == 0, err
	}); err != nil {
		t.Fatalf("endpoint of a deleted pod stays: %v", err)
	}

	if err := d.Resource(Namespaces).Delete(ctx, "ctl", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, func() (bool, error) {
		_, err := d.Resource(Namespaces).Get(ctx, "ctl", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("namespace ctl was not deleted by the namespace controller: %v", err)
	}

	// etcd, kube-apiserver and kube-controller-manager all end.
	assertStopLeavesNothing(t, c, 3)
}

// TestPodIPLoopback records whether the API server takes a loopback Pod IP (the kubelet
// stand-in RunPod with a 127.x address): tests can then key workloads by loopback Pod IPs
// even though EndpointSlices cannot carry them.
func TestPodIPLoopback(t *testing.T) {
	c := Shared(t)
	ctx := ctxT(t)
	err := c.Apply(ctx, `apiVersion: v1
kind: Pod
metadata: {name: loopback, namespace: default}
spec:
  containers: [{name: app, image: app}]
`)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RunPod(ctx, "default", "loopback", "127.0.98.20"); err != nil {
		t.Fatal(err)
	}
	pod, err := dyn(t, c).Resource(Pods).Namespace("default").Get(ctx, "loopback", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ip, _, _ := unstructured.NestedString(pod.Object, "status", "podIP"); ip != "127.0.98.20" {
		t.Errorf("status.podIP = %q", ip)
	}
}
