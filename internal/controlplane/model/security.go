package model

// AuthorizationPolicy and RequestAuthentication: which apply to a proxy (Istio's
// WorkloadPolicyMatcher: root namespace mesh-wide, namespace-wide, selector, targetRefs to
// a gateway), and the mesh settings they need (trust domain, extension providers).

import (
	"strconv"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// GatewayNameLabel is the label Kubernetes Gateway API deployments carry: the name of
// the Gateway they implement (policies with targetRefs select by it).
const GatewayNameLabel = "gateway.networking.k8s.io/gateway-name"

// DefaultTrustDomain is meshConfig.trustDomain's default.
const DefaultTrustDomain = "cluster.local"

// AuthzPolicy is one AuthorizationPolicy.
type AuthzPolicy struct {
	Name, Namespace string
	Spec            *securityv1beta1.AuthorizationPolicy
	DryRun          bool // istio.io/dry-run: "true"
	Config          *config.Object
}

// RequestAuthn is one RequestAuthentication.
type RequestAuthn struct {
	Name, Namespace string
	Spec            *securityv1beta1.RequestAuthentication
	Config          *config.Object
}

// ProxyPolicies are the AuthorizationPolicies that apply to one proxy, by action, each in
// Istio's order (creation time; for files, name.namespace).
type ProxyPolicies struct {
	Custom, Deny, Allow, Audit []*AuthzPolicy
}

// Empty reports whether no policy applies.
func (pp ProxyPolicies) Empty() bool {
	return len(pp.Custom)+len(pp.Deny)+len(pp.Allow)+len(pp.Audit) == 0
}

// security holds the mesh's security policies.
type security struct {
	policies      []*AuthzPolicy
	authns        []*RequestAuthn
	trustDomain   string
	aliases       []string
	providers     []*meshv1alpha1.MeshConfig_ExtensionProvider
	normalization meshv1alpha1.MeshConfig_ProxyPathNormalization_NormalizationType
	topology      *meshv1alpha1.Topology // meshConfig.defaultConfig.gatewayTopology
}

// newSecurity collects the policies of objs (already in Istio's order) and the mesh
// settings they use.
func newSecurity(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) *security {
	s := &security{trustDomain: DefaultTrustDomain}
	if mesh != nil {
		if mesh.GetTrustDomain() != "" {
			s.trustDomain = mesh.GetTrustDomain()
		}
		s.aliases = mesh.GetTrustDomainAliases()
		s.providers = mesh.GetExtensionProviders()
		s.normalization = mesh.GetPathNormalization().GetNormalization()
		s.topology = mesh.GetDefaultConfig().GetGatewayTopology()
	}
	for _, o := range objs {
		switch spec := o.Spec.(type) {
		case *securityv1beta1.AuthorizationPolicy:
			dry, _ := strconv.ParseBool(o.Annotations[config.AnnotationDryRun])
			s.policies = append(s.policies, &AuthzPolicy{Name: o.Name, Namespace: o.Namespace, Spec: spec, DryRun: dry, Config: o})
		case *securityv1beta1.RequestAuthentication:
			s.authns = append(s.authns, &RequestAuthn{Name: o.Name, Namespace: o.Namespace, Spec: spec, Config: o})
		}
	}
	return s
}

func (m *Mesh) sec() *security {
	if m.security == nil {
		return &security{trustDomain: DefaultTrustDomain}
	}
	return m.security
}

// AuthorizationPolicies returns every AuthorizationPolicy, in Istio's order.
func (m *Mesh) AuthorizationPolicies() []*AuthzPolicy { return m.sec().policies }

// RequestAuthentications returns every RequestAuthentication, in Istio's order.
func (m *Mesh) RequestAuthentications() []*RequestAuthn { return m.sec().authns }

// TrustDomain is meshConfig.trustDomain (default cluster.local).
func (m *Mesh) TrustDomain() string { return m.sec().trustDomain }

// TrustDomainAliases is meshConfig.trustDomainAliases.
func (m *Mesh) TrustDomainAliases() []string { return m.sec().aliases }

// ProxyConfigAnnotation is Istio's per-workload proxy configuration (a ProxyConfig in
// YAML or JSON over meshConfig.defaultConfig), e.g. gatewayTopology.numTrustedProxies.
const ProxyConfigAnnotation = "proxy.istio.io/config"

// DefaultGatewayTopology is meshConfig.defaultConfig.gatewayTopology (nil when unset).
func (m *Mesh) DefaultGatewayTopology() *meshv1alpha1.Topology { return m.sec().topology }

// ExtensionProviders is meshConfig.extensionProviders (CUSTOM authorization providers).
func (m *Mesh) ExtensionProviders() []*meshv1alpha1.MeshConfig_ExtensionProvider {
	return m.sec().providers
}

// PathNormalization is meshConfig.pathNormalization.normalization (DEFAULT means BASE).
func (m *Mesh) PathNormalization() meshv1alpha1.MeshConfig_ProxyPathNormalization_NormalizationType {
	return m.sec().normalization
}

// PoliciesFor returns the AuthorizationPolicies that apply to proxy p (whose Labels are
// resolved), by action.
func (m *Mesh) PoliciesFor(p *Proxy) ProxyPolicies {
	var out ProxyPolicies
	for _, ap := range m.sec().policies {
		if !m.attaches(p, ap.Namespace, ap.Spec.GetSelector(), TargetRefs(ap.Spec.GetTargetRef(), ap.Spec.GetTargetRefs())) {
			continue
		}
		switch ap.Spec.GetAction() {
		case securityv1beta1.AuthorizationPolicy_ALLOW:
			out.Allow = append(out.Allow, ap)
		case securityv1beta1.AuthorizationPolicy_DENY:
			out.Deny = append(out.Deny, ap)
		case securityv1beta1.AuthorizationPolicy_AUDIT:
			out.Audit = append(out.Audit, ap)
		case securityv1beta1.AuthorizationPolicy_CUSTOM:
			out.Custom = append(out.Custom, ap)
		}
	}
	return out
}

// RequestAuthenticationsFor returns the RequestAuthentications that apply to proxy p.
func (m *Mesh) RequestAuthenticationsFor(p *Proxy) []*RequestAuthn {
	var out []*RequestAuthn
	for _, ra := range m.sec().authns {
		if m.attaches(p, ra.Namespace, ra.Spec.GetSelector(), TargetRefs(ra.Spec.GetTargetRef(), ra.Spec.GetTargetRefs())) {
			out = append(out, ra)
		}
	}
	return out
}

// attaches is Istio's ShouldAttachPolicy for a policy in namespace ns: it must live in the
// root namespace or the proxy's namespace; a proxy of a Kubernetes Gateway (label
// gateway.networking.k8s.io/gateway-name) takes policies whose targetRefs name its
// Gateway, or selector policies without targetRefs; any other proxy takes selector
// policies and ignores targetRef ones.
func (m *Mesh) attaches(p *Proxy, ns string, sel *typev1beta1.WorkloadSelector, refs []*typev1beta1.PolicyTargetReference) bool {
	if ns != m.rootNamespace && ns != p.Namespace {
		return false
	}
	gw, isGateway := p.Labels[GatewayNameLabel]
	if !isGateway || len(refs) == 0 {
		return len(refs) == 0 && (sel == nil || selects(sel.GetMatchLabels(), p.Labels))
	}
	for _, r := range refs {
		if ns != p.Namespace || (r.GetNamespace() != "" && r.GetNamespace() != p.Namespace) {
			continue
		}
		if r.GetGroup() == "gateway.networking.k8s.io" && r.GetKind() == "Gateway" && r.GetName() == gw {
			return true
		}
	}
	return false
}

// Selects reports whether a policy of namespace ns with selector sel and targetRefs refs
// would apply to workload w; analyze uses it to find policies that select nothing.
func (m *Mesh) Selects(w *Workload, ns string, sel *typev1beta1.WorkloadSelector, refs []*typev1beta1.PolicyTargetReference) bool {
	return m.attaches(&Proxy{Namespace: w.Namespace, Labels: w.Labels}, ns, sel, refs)
}

// TargetRefs is a policy's targetRefs, or its targetRef alone.
func TargetRefs(one *typev1beta1.PolicyTargetReference, many []*typev1beta1.PolicyTargetReference) []*typev1beta1.PolicyTargetReference {
	if len(many) == 0 && one != nil {
		return []*typev1beta1.PolicyTargetReference{one}
	}
	return many
}
