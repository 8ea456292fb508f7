package inject

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Decision says whether a pod gets a sidecar and, if not, why.
type Decision struct {
	Inject bool
	Reason string // why not; empty when Inject
}

// IgnoredNamespaces are never injected (Istio's IgnoredNamespaces).
var IgnoredNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}

// Decide applies Istio's selection rules, in Istio's order: the webhook's namespace and
// object selectors (only when ns is known), then the webhook's own checks (hostNetwork, the
// ignored namespaces, the sidecar.istio.io/inject label — which wins over the deprecated
// annotation of the same name —, the policy), and last whether the pod already carries a
// sidecar (injection is idempotent).
func Decide(pod *corev1.Pod, ns *Namespace, policy Policy, revision string) Decision {
	if ns != nil {
		if ok, why := selectedByWebhook(ns, pod.Labels, revision); !ok {
			return Decision{Reason: why}
		}
	}
	if pod.Spec.HostNetwork {
		return Decision{Reason: "the pod uses hostNetwork: capturing its traffic would capture the node's"}
	}
	namespace := pod.Namespace
	if namespace == "" && ns != nil {
		namespace = ns.Name
	}
	if slices.Contains(IgnoredNamespaces, namespace) {
		return Decision{Reason: fmt.Sprintf("namespace %s is never injected", namespace)}
	}
	value, from, found := injectSetting(pod)
	inject := policy == PolicyEnabled
	switch {
	case found && value == "true":
		inject = true
	case found && value == "false":
		return Decision{Reason: fmt.Sprintf("the pod's %s %s is \"false\"", from, LabelInject)}
	}
	if !inject {
		return Decision{Reason: fmt.Sprintf("the injection policy is %s and the pod has no %s=true label", policy, LabelInject)}
	}
	if _, ok := pod.Annotations[AnnotationStatus]; ok {
		return Decision{Reason: fmt.Sprintf("already injected (annotation %s is set)", AnnotationStatus)}
	}
	if findProxy(pod) != nil {
		return Decision{Reason: fmt.Sprintf("the pod already has a container named %s (Lucid does not merge a user-defined proxy container)", ProxyContainerName)}
	}
	return Decision{Inject: true}
}

// injectSetting returns the pod's sidecar.istio.io/inject: the label when present, else the
// annotation. Values other than "true" and "false" fall back to the policy, as in Istio.
func injectSetting(pod *corev1.Pod) (value, from string, found bool) {
	if v, ok := pod.Labels[LabelInject]; ok {
		return v, "label", true
	}
	if v, ok := pod.Annotations[LabelInject]; ok {
		return v, "annotation", true
	}
	return "", "", false
}

// selectedByWebhook evaluates the selectors of Istio's four webhooks:
//
//	rev.namespace: namespace istio.io/rev In [rev], istio-injection DoesNotExist; pod sidecar.istio.io/inject NotIn [false]
//	rev.object:    namespace istio.io/rev and istio-injection DoesNotExist; pod inject NotIn [false], istio.io/rev In [rev]
//	namespace:     namespace istio-injection In [enabled]; pod inject NotIn [false]
//	object:        namespace istio-injection and istio.io/rev DoesNotExist; pod inject In [true], istio.io/rev DoesNotExist
func selectedByWebhook(ns *Namespace, podLabels map[string]string, revision string) (bool, string) {
	nsInjection, hasInjection := ns.Labels[LabelInjection]
	nsRev, hasRev := ns.Labels[LabelRev]
	podInject, hasPodInject := podLabels[LabelInject]
	podRev, hasPodRev := podLabels[LabelRev]
	notFalse := !hasPodInject || podInject != "false"

	switch {
	case hasInjection && nsInjection == "enabled":
		if notFalse {
			return true, ""
		}
	case !hasInjection && hasRev && nsRev == revision:
		if notFalse {
			return true, ""
		}
	case !hasInjection && !hasRev:
		if hasPodRev && podRev == revision && notFalse {
			return true, ""
		}
		if !hasPodRev && hasPodInject && podInject == "true" {
			return true, ""
		}
		return false, fmt.Sprintf("namespace %s has no %s=enabled or %s=%s label, and the pod no %s=true label",
			ns.Name, LabelInjection, LabelRev, revision, LabelInject)
	case hasInjection:
		return false, fmt.Sprintf("namespace %s has label %s=%s (only \"enabled\" injects)", ns.Name, LabelInjection, nsInjection)
	default:
		return false, fmt.Sprintf("namespace %s has label %s=%s, not this control plane's revision %q", ns.Name, LabelRev, nsRev, revision)
	}
	return false, fmt.Sprintf("the pod's label %s is \"false\"", LabelInject)
}
