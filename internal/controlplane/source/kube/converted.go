package kube

import (
	"crypto/sha256"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// converted keeps the objects the last build converted, with what each was converted from,
// so that the next build converts and hashes again only the Services and Pods whose inputs
// changed. Without it every build (every endpoint change under churn) converted every
// Service and Pod of the cluster and matched every Pod against every Service: with 1,000
// Services and 11,000 Pods that was over 40 % of the control plane's CPU. Owned by the
// Source's Run goroutine.
type converted struct {
	services map[types.UID]convertedObject
	pods     map[types.UID]convertedObject
	// The last build's pods by name and their objects in order, reused as they are by a
	// build after which no Pod, Service or Namespace changed (registry.podsAsBefore).
	podList  []*corev1.Pod
	podIndex map[podKey]*corev1.Pod
	podObjs  []*config.Object
	podsGen  uint64 // Source.podsGen when they were listed
}

// convertedObject is one conversion and the versions of its inputs: the object's own
// resourceVersion and what else it read (a Service: its slices and their pods; a Pod: a
// digest of its namespace's Services).
type convertedObject struct {
	version, deps string
	obj           *config.Object // nil: the input converts to nothing (a pod without an IP)
}

// service returns svc's object, converting it only when svc, its slices or the pods they
// point at changed since the last build.
func (c *converted) service(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, pods map[podKey]*corev1.Pod, next map[types.UID]convertedObject) *config.Object {
	deps := serviceInputs(eps, pods)
	if prev, ok := c.services[svc.UID]; ok && svc.UID != "" && svc.ResourceVersion != "" && deps != "" &&
		prev.version == svc.ResourceVersion && prev.deps == deps {
		next[svc.UID] = prev
		return prev.obj
	}
	o := serviceObject(svc, eps, pods)
	if svc.UID != "" {
		next[svc.UID] = convertedObject{version: svc.ResourceVersion, deps: deps, obj: o}
	}
	return o
}

// pod returns p's object, converting it only when p or the Services of its namespace
// (whose named target ports it resolves) changed; nsServices is the versions of those.
func (c *converted) pod(p *corev1.Pod, services []*corev1.Service, nsServices string, next map[types.UID]convertedObject) *config.Object {
	if prev, ok := c.pods[p.UID]; ok && p.UID != "" && p.ResourceVersion != "" &&
		prev.version == p.ResourceVersion && prev.deps == nsServices {
		next[p.UID] = prev
		return prev.obj
	}
	o := podObject(p, services)
	if p.UID != "" {
		next[p.UID] = convertedObject{version: p.ResourceVersion, deps: nsServices, obj: o}
	}
	return o
}

// serviceInputs names the versions of what serviceObject reads besides the Service: its
// slices and the pods their endpoints point at ("-" for one that is not there). "" when an
// input has no resourceVersion (it never came from an API server): convert it every time.
func serviceInputs(eps []*discoveryv1.EndpointSlice, pods map[podKey]*corev1.Pod) string {
	var b strings.Builder
	b.WriteByte('v') // never "": a Service without slices has its inputs too
	for _, s := range eps {
		if s.ResourceVersion == "" {
			return ""
		}
		b.WriteByte('|')
		b.WriteString(string(s.UID))
		b.WriteByte('@')
		b.WriteString(s.ResourceVersion)
		for _, e := range s.Endpoints {
			ref := e.TargetRef
			if ref == nil || ref.Kind != "Pod" {
				continue
			}
			ns := ref.Namespace
			if ns == "" {
				ns = s.Namespace
			}
			b.WriteByte(',')
			if p := pods[podKey{ns, ref.Name}]; p != nil && p.ResourceVersion != "" {
				b.WriteString(p.ResourceVersion)
			} else {
				b.WriteByte('-')
			}
		}
	}
	return b.String()
}

// namespaceServices is, per namespace, a digest of the versions of its Services (what a
// pod's conversion depends on besides the pod).
func namespaceServices(services []*corev1.Service) map[string]string {
	byNS := map[string][]string{}
	for _, svc := range services {
		byNS[svc.Namespace] = append(byNS[svc.Namespace], string(svc.UID)+"@"+svc.ResourceVersion)
	}
	out := make(map[string]string, len(byNS))
	for ns, vs := range byNS {
		slices.Sort(vs)
		sum := sha256.Sum256([]byte(strings.Join(vs, ",")))
		out[ns] = string(sum[:]) // a digest: every pod of the namespace is compared with it
	}
	return out
}
