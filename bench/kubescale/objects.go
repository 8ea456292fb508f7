package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/lucid-mesh/lucid/internal/controlplane/source/kube"
)

var (
	podsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	servicesGVR = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	slicesGVR   = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	drGVR       = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
)

// port is every service's one port (name "http", so Istio's rule makes it HTTP).
const port = 8080

// sharedNamespace is the namespace every scoped sidecar also sees.
const sharedNamespace = "scale-0"

// layout is the shape of the mesh the bench creates.
type layout struct {
	services   int // Services, spread over the namespaces
	endpoints  int // endpoints (and pods) per Service
	namespaces int
	drEvery    int  // every drEvery-th Service has a DestinationRule with subsets v1 and v2
	sidecars   int  // client pods, one per connected sidecar
	scoped     bool // each namespace has a Sidecar: egress to itself and sharedNamespace
}

// sees reports whether sidecar i's configuration has service svc.
func (l layout) sees(i, svc int) bool {
	return !l.scoped || l.ns(i) == l.ns(svc) || l.ns(svc) == sharedNamespace
}

func (l layout) ns(svc int) string      { return fmt.Sprintf("scale-%d", svc%l.namespaces) }
func (l layout) svcName(svc int) string { return fmt.Sprintf("svc-%04d", svc) }
func (l layout) host(svc int) string {
	return l.svcName(svc) + "." + l.ns(svc) + ".svc.cluster.local"
}
func (l layout) podName(svc, ep int) string { return fmt.Sprintf("svc-%04d-%02d", svc, ep) }
func (l layout) hasDR(svc int) bool         { return svc%l.drEvery == 0 }

// version is the "version" label an endpoint's pod starts with: v1 for even endpoints.
func version(ep int) string {
	if ep%2 == 0 {
		return "v1"
	}
	return "v2"
}

// addr is the loopback address of svc's endpoint ep: the WorkloadEntry's address in local
// mode, the pod's kube.LocalAddressAnnotation (the address the control plane puts in xDS in
// place of the pod IP) on Kubernetes. Each endpoint has its own, in 127.86.0.0/16; nothing
// connects to it, the bench only reads xDS.
func (l layout) addr(svc, ep int) string {
	k := svc*l.endpoints + ep
	return fmt.Sprintf("127.86.%d.%d", k/250, k%250+1)
}

// sidecarAddr is client pod i's (and its sidecar's) loopback address, in 127.85.0.0/16.
func sidecarAddr(i int) string { return fmt.Sprintf("127.85.%d.%d", i/250, i%250+1) }

// apiAddr is the address stored in the API for endpoint k of the whole mesh (the API server
// refuses loopback addresses in EndpointSlices): 198.18.0.0/15, RFC 2544's benchmarking
// range. It never reaches xDS (every pod has a local address) and nothing dials it.
func apiAddr(k int) string { return fmt.Sprintf("198.18.%d.%d", k/250, k%250+1) }

func pod(ns, name, local string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": "example.com/app:1",
				"ports": []any{map[string]any{"name": "http", "containerPort": int64(port)}}}},
			"automountServiceAccountToken": false,
		},
	}}
	u.SetLabels(labels)
	u.SetAnnotations(map[string]string{kube.LocalAddressAnnotation: local})
	return u
}

func (l layout) endpointPod(svc, ep int) *unstructured.Unstructured {
	return pod(l.ns(svc), l.podName(svc, ep), l.addr(svc, ep),
		map[string]string{"app": l.svcName(svc), "version": version(ep)})
}

func (l layout) service(svc int) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": l.svcName(svc), "namespace": l.ns(svc)},
		"spec": map[string]any{
			"selector": map[string]any{"app": l.svcName(svc)},
			"ports":    []any{map[string]any{"name": "http", "port": int64(port), "targetPort": int64(port)}},
		},
	}}
	return u
}

// slice is svc's EndpointSlice as the EndpointSlice controller would write it, with the
// endpoints whose index is in eps (all ready).
func (l layout) slice(svc int, eps []int) *unstructured.Unstructured {
	endpoints := make([]any, 0, len(eps))
	for _, ep := range eps {
		endpoints = append(endpoints, map[string]any{
			"addresses":  []any{apiAddr(svc*l.endpoints + ep)},
			"conditions": map[string]any{"ready": true},
			"targetRef":  map[string]any{"kind": "Pod", "namespace": l.ns(svc), "name": l.podName(svc, ep)},
		})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		"metadata": map[string]any{
			"name": l.svcName(svc) + "-abcde", "namespace": l.ns(svc),
			"labels": map[string]any{"kubernetes.io/service-name": l.svcName(svc)},
		},
		"addressType": "IPv4",
		"ports":       []any{map[string]any{"name": "http", "port": int64(port), "protocol": "TCP"}},
		"endpoints":   endpoints,
	}}
}

func (l layout) destinationRule(svc int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": l.svcName(svc), "namespace": l.ns(svc)},
		"spec": map[string]any{
			"host": l.svcName(svc),
			"subsets": []any{
				map[string]any{"name": "v1", "labels": map[string]any{"version": "v1"}},
				map[string]any{"name": "v2", "labels": map[string]any{"version": "v2"}},
			},
		},
	}}
}

func allEndpoints(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// createJob is one object to create.
type createJob struct {
	gvr schema.GroupVersionResource
	obj *unstructured.Unstructured
	// status, when set, is written with UpdateStatus after the create (a client pod's IP).
	status map[string]any
}

// phase is how long creating one kind of object took.
type phase struct {
	what  string
	count int
	took  time.Duration
}

func (p phase) rate() float64 { return float64(p.count) / p.took.Seconds() }

// createAll creates jobs through dyn with at most workers requests in flight.
func createAll(ctx context.Context, dyn dynamic.Interface, workers int, what string, jobs []createJob) (phase, error) {
	start := time.Now()
	ch := make(chan createJob)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := create(ctx, dyn, j); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					cancel()
				}
			}
		}()
	}
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ch)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return phase{}, fmt.Errorf("creating %s: %w", what, *e)
	}
	if err := ctx.Err(); err != nil {
		return phase{}, fmt.Errorf("creating %s: %w", what, err)
	}
	return phase{what: what, count: len(jobs), took: time.Since(start)}, nil
}

func create(ctx context.Context, dyn dynamic.Interface, j createJob) error {
	ri := dyn.Resource(j.gvr).Namespace(j.obj.GetNamespace())
	created, err := ri.Create(ctx, j.obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", j.gvr.Resource, j.obj.GetNamespace(), j.obj.GetName(), err)
	}
	if j.status != nil {
		created.Object["status"] = j.status
		if _, err := ri.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("%s %s/%s status: %w", j.gvr.Resource, j.obj.GetNamespace(), j.obj.GetName(), err)
		}
	}
	return nil
}

// populate creates the whole mesh: pods, client pods (running, with an IP), Services,
// EndpointSlices and DestinationRules, and returns how long each kind took.
func populate(ctx context.Context, dyn dynamic.Interface, l layout, workers int) ([]phase, error) {
	var pods, clients, svcs, slices, drs []createJob
	for s := range l.services {
		for ep := range l.endpoints {
			pods = append(pods, createJob{gvr: podsGVR, obj: l.endpointPod(s, ep)})
		}
		svcs = append(svcs, createJob{gvr: servicesGVR, obj: l.service(s)})
		slices = append(slices, createJob{gvr: slicesGVR, obj: l.slice(s, allEndpoints(l.endpoints))})
		if l.hasDR(s) {
			drs = append(drs, createJob{gvr: drGVR, obj: l.destinationRule(s)})
		}
	}
	for i := range l.sidecars + 1 { // + the footprint sidecar's workload
		ip := fmt.Sprintf("198.19.%d.%d", i/250, i%250+1)
		clients = append(clients, createJob{
			gvr: podsGVR, obj: pod(l.ns(i), clientName(i), sidecarAddr(i), map[string]string{"app": "client"}),
			status: map[string]any{"phase": "Running", "podIP": ip, "podIPs": []any{map[string]any{"ip": ip}}},
		})
	}
	var out []phase
	for _, p := range []struct {
		what string
		jobs []createJob
	}{
		{"Pods (endpoints)", pods}, {"Pods (sidecars, + status)", clients}, {"Services", svcs},
		{"EndpointSlices", slices}, {"DestinationRules", drs},
	} {
		ph, err := createAll(ctx, dyn, workers, p.what, p.jobs)
		if err != nil {
			return out, err
		}
		out = append(out, ph)
	}
	return out, nil
}

func clientName(i int) string { return fmt.Sprintf("client-%04d", i) }

// setVersion merge-patches pod (svc, ep)'s version label.
func setVersion(ctx context.Context, dyn dynamic.Interface, l layout, svc, ep int, v string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{"version":%q}}}`, v)
	_, err := dyn.Resource(podsGVR).Namespace(l.ns(svc)).Patch(ctx, l.podName(svc, ep), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("patch pod %s: %w", l.podName(svc, ep), err)
	}
	return nil
}
