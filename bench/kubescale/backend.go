package main

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// backend is where the mesh lives and how it is changed: a Kubernetes API server (the
// control plane runs `discovery --kubernetes`) or a config directory (local mode, the
// control plane runs `discovery --config-dir`, the twin without Kubernetes).
type backend interface {
	// populate creates the whole mesh and reports how long each kind took.
	populate(ctx context.Context) ([]phase, error)
	// discoveryArgs are the control-plane child's flags for this backend.
	discoveryArgs() []string
	// setEndpoints makes svc's endpoints exactly eps (indexes).
	setEndpoints(ctx context.Context, svc int, eps []int) error
	// setVersion sets the version label of svc's endpoint ep.
	setVersion(ctx context.Context, svc, ep int, v string) error
	// setRetries makes svc's VirtualService route with the given retry attempts.
	setRetries(ctx context.Context, svc int, attempts int) error
	// createService creates svc (beyond l.services) with all its endpoints; prepare (its
	// pods, untimed) comes first.
	prepareService(ctx context.Context, svc int) error
	createService(ctx context.Context, svc int) error
	name() string
}

var (
	vsGVR      = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	sidecarGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "sidecars"}
)

// kubeBackend changes the mesh through the API server.
type kubeBackend struct {
	dyn        dynamic.Interface
	l          layout
	workers    int
	kubeconfig string

	mu       sync.Mutex
	sliceRVs map[int]string // resourceVersion of each EndpointSlice we last wrote
	vsRVs    map[int]string
}

func (k *kubeBackend) name() string { return "kube" }

func (k *kubeBackend) discoveryArgs() []string { return []string{"-kubeconfig=" + k.kubeconfig} }

func (k *kubeBackend) populate(ctx context.Context) ([]phase, error) {
	out, err := populate(ctx, k.dyn, k.l, k.workers)
	if err != nil || !k.l.scoped {
		return out, err
	}
	var jobs []createJob
	for n := range k.l.namespaces {
		jobs = append(jobs, createJob{gvr: sidecarGVR, obj: k.l.sidecarResource(n)})
	}
	ph, err := createAll(ctx, k.dyn, k.workers, "Sidecars", jobs)
	return append(out, ph), err
}

func (k *kubeBackend) setEndpoints(ctx context.Context, svc int, eps []int) error {
	ri := k.dyn.Resource(slicesGVR).Namespace(k.l.ns(svc))
	k.mu.Lock()
	rv := k.sliceRVs[svc]
	k.mu.Unlock()
	if rv == "" {
		cur, err := ri.Get(ctx, k.l.svcName(svc)+"-abcde", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get EndpointSlice of %s: %w", k.l.svcName(svc), err)
		}
		rv = cur.GetResourceVersion()
	}
	next := k.l.slice(svc, eps)
	next.SetResourceVersion(rv)
	done, err := ri.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update EndpointSlice of %s: %w", k.l.svcName(svc), err)
	}
	k.mu.Lock()
	if k.sliceRVs == nil {
		k.sliceRVs = map[int]string{}
	}
	k.sliceRVs[svc] = done.GetResourceVersion()
	k.mu.Unlock()
	return nil
}

func (k *kubeBackend) setVersion(ctx context.Context, svc, ep int, v string) error {
	return setVersion(ctx, k.dyn, k.l, svc, ep, v)
}

func (k *kubeBackend) setRetries(ctx context.Context, svc, attempts int) error {
	ri := k.dyn.Resource(vsGVR).Namespace(k.l.ns(svc))
	obj := k.l.virtualService(svc, attempts)
	k.mu.Lock()
	rv := k.vsRVs[svc]
	k.mu.Unlock()
	var done *unstructured.Unstructured
	var err error
	if rv == "" {
		done, err = ri.Create(ctx, obj, metav1.CreateOptions{})
	} else {
		obj.SetResourceVersion(rv)
		done, err = ri.Update(ctx, obj, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("VirtualService of %s: %w", k.l.svcName(svc), err)
	}
	k.mu.Lock()
	if k.vsRVs == nil {
		k.vsRVs = map[int]string{}
	}
	k.vsRVs[svc] = done.GetResourceVersion()
	k.mu.Unlock()
	return nil
}

func (k *kubeBackend) prepareService(ctx context.Context, svc int) error {
	var pods []createJob
	for ep := range k.l.endpoints {
		pods = append(pods, createJob{gvr: podsGVR, obj: k.l.endpointPod(svc, ep)})
	}
	_, err := createAll(ctx, k.dyn, k.workers, "Pods", pods)
	return err
}

func (k *kubeBackend) createService(ctx context.Context, svc int) error {
	for _, j := range []createJob{
		{gvr: servicesGVR, obj: k.l.service(svc)},
		{gvr: slicesGVR, obj: k.l.slice(svc, allEndpoints(k.l.endpoints))},
	} {
		if err := create(ctx, k.dyn, j); err != nil {
			return err
		}
	}
	return nil
}

// virtualService routes svc to itself with attempts retries (a change every sidecar that
// sees svc must get: its route's retry policy).
func (l layout) virtualService(svc, attempts int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": l.svcName(svc), "namespace": l.ns(svc)},
		"spec": map[string]any{
			"hosts": []any{l.svcName(svc)},
			"http": []any{map[string]any{
				"route":   []any{map[string]any{"destination": map[string]any{"host": l.svcName(svc)}}},
				"retries": map[string]any{"attempts": int64(attempts), "retryOn": "connect-failure"},
			}},
		},
	}}
}

// sidecarResource is namespace n's Sidecar in the scoped runs: egress to its own namespace
// and the shared one (scale-0).
func (l layout) sidecarResource(n int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "Sidecar",
		"metadata": map[string]any{"name": "default", "namespace": fmt.Sprintf("scale-%d", n)},
		"spec": map[string]any{
			"egress": []any{map[string]any{"hosts": []any{"./*", sharedNamespace + "/*"}}},
		},
	}}
}
