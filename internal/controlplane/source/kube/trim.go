package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// The informers' transforms: each object is converted from unstructured to its k8s.io/api
// type and trimmed to the fields the model reads before the informer stores it, so the
// caches hold a fraction of what the API server sends (managed fields, pod specs and
// statuses are most of it).

// keptPodAnnotations are the pod annotations the model reads.
var keptPodAnnotations = []string{model.AppAddressAnnotation, LocalAddressAnnotation, model.ProxyConfigAnnotation}

func convert(obj any, into any) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("unexpected object type %T", obj)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		return fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

// transform wraps a conversion so tombstones and already converted objects pass through.
func transform[T any](conv func(*unstructured.Unstructured) (T, error)) cache.TransformFunc {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil // a tombstone or an object transformed before
		}
		return conv(u)
	}
}

func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, Labels: m.Labels, Annotations: m.Annotations,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp,
	}
}

func toService(u *unstructured.Unstructured) (*corev1.Service, error) {
	var s corev1.Service
	if err := convert(u, &s); err != nil {
		return nil, err
	}
	s.ObjectMeta = trimMeta(s.ObjectMeta)
	delete(s.Annotations, corev1.LastAppliedConfigAnnotation)
	s.Status = corev1.ServiceStatus{}
	return &s, nil
}

func toEndpointSlice(u *unstructured.Unstructured) (*discoveryv1.EndpointSlice, error) {
	var s discoveryv1.EndpointSlice
	if err := convert(u, &s); err != nil {
		return nil, err
	}
	s.ObjectMeta = trimMeta(s.ObjectMeta)
	s.Annotations = nil
	for i := range s.Endpoints {
		s.Endpoints[i].Hints = nil
		s.Endpoints[i].DeprecatedTopology = nil
	}
	return &s, nil
}

func toPod(u *unstructured.Unstructured) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := convert(u, &p); err != nil {
		return nil, err
	}
	out := &corev1.Pod{ObjectMeta: trimMeta(p.ObjectMeta)}
	out.Annotations = nil
	for _, k := range keptPodAnnotations {
		if v, ok := p.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	out.Spec.ServiceAccountName = p.Spec.ServiceAccountName
	out.Spec.NodeName = p.Spec.NodeName
	out.Spec.HostNetwork = p.Spec.HostNetwork
	for _, c := range p.Spec.Containers {
		if len(c.Ports) > 0 {
			out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports})
		}
	}
	out.Status.Phase = p.Status.Phase
	out.Status.PodIP = p.Status.PodIP
	out.Status.PodIPs = p.Status.PodIPs
	return out, nil
}

func toNamespace(u *unstructured.Unstructured) (*corev1.Namespace, error) {
	var n corev1.Namespace
	if err := convert(u, &n); err != nil {
		return nil, err
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels,
	}, Status: corev1.NamespaceStatus{Phase: n.Status.Phase}}, nil
}

// trimIstio drops what config.Parse never reads (managed fields, status, the
// last-applied annotation) and keeps the object unstructured: Istio objects go through
// the same parser as files.
func trimIstio(u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	u.SetManagedFields(nil)
	delete(u.Object, "status")
	if a := u.GetAnnotations(); a != nil {
		if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
			delete(a, corev1.LastAppliedConfigAnnotation)
			u.SetAnnotations(a)
		}
	}
	return u, nil
}
