package install

import (
	"slices"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// istioGroups are the API groups of the Istio CRDs.
var istioGroups = []string{
	"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io",
}

// Objects returns the objects Render writes after the CRDs, in apply order.
func Objects(o Options) []any {
	o = o.withDefaults()
	labels := map[string]string{"app": Name, "app.kubernetes.io/name": "lucid"}
	meta := func(kind, apiVersion, name, ns string) (metav1.TypeMeta, metav1.ObjectMeta) {
		return metav1.TypeMeta{Kind: kind, APIVersion: apiVersion}, metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	var objs []any

	nsTM, nsOM := meta("Namespace", "v1", o.Namespace, "")
	objs = append(objs, &corev1.Namespace{TypeMeta: nsTM, ObjectMeta: nsOM})

	saTM, saOM := meta("ServiceAccount", "v1", Name, o.Namespace)
	objs = append(objs, &corev1.ServiceAccount{TypeMeta: saTM, ObjectMeta: saOM})

	crTM, crOM := meta("ClusterRole", "rbac.authorization.k8s.io/v1", Name, "")
	objs = append(objs, &rbacv1.ClusterRole{TypeMeta: crTM, ObjectMeta: crOM, Rules: clusterRules()})
	crbTM, crbOM := meta("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", Name, "")
	objs = append(objs, &rbacv1.ClusterRoleBinding{TypeMeta: crbTM, ObjectMeta: crbOM,
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: o.Namespace}},
	})
	// The webhook's serving certificate is kept in a Secret of the control plane's namespace.
	rTM, rOM := meta("Role", "rbac.authorization.k8s.io/v1", Name, o.Namespace)
	objs = append(objs, &rbacv1.Role{TypeMeta: rTM, ObjectMeta: rOM, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
	}})
	rbTM, rbOM := meta("RoleBinding", "rbac.authorization.k8s.io/v1", Name, o.Namespace)
	objs = append(objs, &rbacv1.RoleBinding{TypeMeta: rbTM, ObjectMeta: rbOM,
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: o.Namespace}},
	})

	objs = append(objs, deployment(o, labels), service(o, labels), webhookConfiguration(o, labels))
	return objs
}

func clusterRules() []rbacv1.PolicyRule {
	read := []string{"get", "list", "watch"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services", "pods", "namespaces"}, Verbs: read},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
		{APIGroups: istioGroups, Resources: []string{"*"}, Verbs: read},
		{APIGroups: istioGroups, Resources: []string{"*/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: read},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
		{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
			ResourceNames: []string{WebhookConfig}, Verbs: []string{"get", "patch"}},
		// The mesh CA: workloads' tokens checked by TokenReview, the roots published in
		// every namespace (ConfigMap istio-ca-root-cert).
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update"}},
		// Gateway credentialNames: the Secrets Gateways reference, each watched by name
		// (as Istio's gateway controller reads them).
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: read},
	}
}

func deployment(o Options, labels map[string]string) *appsv1.Deployment {
	selector := map[string]string{"app": Name}
	podLabels := map[string]string{"app": Name, "istio.io/rev": o.Revision, "sidecar.istio.io/inject": "false"}
	uid := int64(1337)
	yes, no := true, false
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{Kind: "Deployment", APIVersion: "apps/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: o.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &o.Replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
				Spec: corev1.PodSpec{
					ServiceAccountName: Name,
					Containers: []corev1.Container{{
						Name:  "discovery",
						Image: o.Image,
						// The webhook injects the image the control plane runs, so that
						// `lucid install --image` covers the sidecars and istio-init too.
						Args: append(slices.Clone(DiscoveryArgs), "--injector-image="+o.Image),
						Ports: []corev1.ContainerPort{
							{Name: "grpc-xds", ContainerPort: GRPCPort, Protocol: corev1.ProtocolTCP},
							{Name: "https-dns", ContainerPort: SecurePort, Protocol: corev1.ProtocolTCP},
							{Name: "http-monitoring", ContainerPort: MonitoringPort, Protocol: corev1.ProtocolTCP},
							{Name: "https-webhook", ContainerPort: WebhookPort, Protocol: corev1.ProtocolTCP},
						},
						Env: []corev1.EnvVar{
							{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
							{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
							{Name: "REVISION", Value: o.Revision},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(MonitoringPort)}},
							PeriodSeconds: 3, TimeoutSeconds: 5,
						},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU:    resource.MustParse("100m"),
							corev1.ResourceMemory: resource.MustParse("256Mi"),
						}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: &no,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							ReadOnlyRootFilesystem:   &yes,
							RunAsNonRoot:             &yes,
							RunAsUser:                &uid,
							RunAsGroup:               &uid,
						},
					}},
				},
			},
		},
	}
}

func service(o Options, labels map[string]string) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{Kind: "Service", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: Name, Namespace: o.Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": Name},
			Ports: []corev1.ServicePort{
				{Name: "grpc-xds", Port: GRPCPort, TargetPort: intstr.FromInt32(GRPCPort), Protocol: corev1.ProtocolTCP},
				{Name: "https-dns", Port: SecurePort, TargetPort: intstr.FromInt32(SecurePort), Protocol: corev1.ProtocolTCP},
				{Name: "http-monitoring", Port: MonitoringPort, TargetPort: intstr.FromInt32(MonitoringPort), Protocol: corev1.ProtocolTCP},
				{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(WebhookPort), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// webhookConfiguration is Istio's four injection webhooks (istiod's sidecar-injector configuration) pointing at the
// discovery Service. The caBundle is left empty: `lucid discovery` creates the webhook's
// certificate and patches its CA in.
func webhookConfiguration(o Options, labels map[string]string) *admissionv1.MutatingWebhookConfiguration {
	path := WebhookPath
	port := int32(443)
	fail := admissionv1.Fail
	none := admissionv1.SideEffectClassNone
	never := admissionv1.NeverReinvocationPolicy
	req := func(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	hook := func(name string, ns, obj []metav1.LabelSelectorRequirement) admissionv1.MutatingWebhook {
		return admissionv1.MutatingWebhook{
			Name: name,
			ClientConfig: admissionv1.WebhookClientConfig{
				Service: &admissionv1.ServiceReference{Name: Name, Namespace: o.Namespace, Path: &path, Port: &port},
			},
			Rules: []admissionv1.RuleWithOperations{{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			ReinvocationPolicy:      &never,
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector:       &metav1.LabelSelector{MatchExpressions: ns},
			ObjectSelector:          &metav1.LabelSelector{MatchExpressions: obj},
		}
	}
	const (
		rev    = "istio.io/rev"
		inj    = "istio-injection"
		podInj = "sidecar.istio.io/inject"
	)
	in, notIn := metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn
	exists := metav1.LabelSelectorOpDoesNotExist
	return &admissionv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{Kind: "MutatingWebhookConfiguration", APIVersion: "admissionregistration.k8s.io/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: WebhookConfig, Labels: labels},
		Webhooks: []admissionv1.MutatingWebhook{
			hook("rev.namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req(rev, in, o.Revision), req(inj, exists)},
				[]metav1.LabelSelectorRequirement{req(podInj, notIn, "false")}),
			hook("rev.object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req(rev, exists), req(inj, exists)},
				[]metav1.LabelSelectorRequirement{req(podInj, notIn, "false"), req(rev, in, o.Revision)}),
			hook("namespace.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req(inj, in, "enabled")},
				[]metav1.LabelSelectorRequirement{req(podInj, notIn, "false")}),
			hook("object.sidecar-injector.istio.io",
				[]metav1.LabelSelectorRequirement{req(inj, exists), req(rev, exists)},
				[]metav1.LabelSelectorRequirement{req(podInj, in, "true"), req(rev, exists)}),
		},
	}
}
