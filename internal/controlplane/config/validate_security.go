package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/lucid-mesh/lucid/internal/contract/pathtemplate"
)

// policyTargets checks a security policy's selector and targetRef(s) as Istio does: at most
// one of them, a selector without empty keys or wildcards, targets of an allowed kind in
// the policy's namespace.
func (v *validator) policyTargets(sel *typev1beta1.WorkloadSelector, ref *typev1beta1.PolicyTargetReference, refs []*typev1beta1.PolicyTargetReference) {
	set := 0
	if sel != nil {
		set++
	}
	if ref != nil {
		set++
	}
	if len(refs) > 0 {
		set++
	}
	if set > 1 {
		v.errorf("spec", "only one of targetRefs or workloadSelector can be set")
	}
	if sel != nil {
		v.selectorLabels("spec.selector.matchLabels", sel.MatchLabels)
	}
	v.targetRef("spec.targetRef", ref)
	for i, r := range refs {
		v.targetRef(idx("spec.targetRefs", i), r)
	}
}

// allowedTargetKinds are the kinds a policy may target (group "core" is Kubernetes' core).
var allowedTargetKinds = map[string]bool{
	"core/Service": true, "networking.istio.io/ServiceEntry": true,
	"gateway.networking.k8s.io/Gateway": true, "gateway.networking.k8s.io/GatewayClass": true,
}

func (v *validator) targetRef(p string, r *typev1beta1.PolicyTargetReference) {
	if r == nil {
		return
	}
	if r.Name == "" {
		v.errorf(p+".name", "targetRef name must be set")
	}
	if r.Namespace != "" {
		v.errorf(p+".namespace", "targetRef namespace must not be set; cross namespace referencing is not supported")
	}
	group := r.Group
	if group == "" {
		group = "core"
	}
	if !allowedTargetKinds[group+"/"+r.Kind] {
		v.errorf(p+".kind", "targetRef must be to a Service, ServiceEntry, Gateway or GatewayClass but was %s/%s", r.Group, r.Kind)
	}
}

func validateRequestAuthentication(o *Object, v *validator) {
	ra := o.Spec.(*securityv1beta1.RequestAuthentication)
	v.policyTargets(ra.Selector, ra.TargetRef, ra.TargetRefs)
	for i, r := range ra.JwtRules {
		p := idx("spec.jwtRules", i)
		if r == nil {
			continue
		}
		for j, aud := range r.Audiences {
			if aud == "" {
				v.errorf(idx(p+".audiences", j), "audience must be non-empty string")
			}
		}
		if r.Issuer == "" && r.JwksUri == "" {
			v.errorf(p, "issuer or jwksUri must be non-empty string")
		}
		if r.JwksUri != "" {
			if u, err := url.Parse(r.JwksUri); err != nil {
				v.errorf(p+".jwksUri", "%v", err)
			} else if u.Scheme != "http" && u.Scheme != "https" {
				v.errorf(p+".jwksUri", "URI scheme %q is not supported", u.Scheme)
			} else if port := u.Port(); port != "" {
				if _, err := strconv.Atoi(port); err != nil {
					v.errorf(p+".jwksUri", "%v", err)
				}
			}
		}
		if r.Jwks != "" {
			if msg := jwksError(r.Jwks); msg != "" {
				v.errorf(p+".jwks", "jwks parse error: %s", msg)
			}
		}
		for j, h := range r.FromHeaders {
			if h == nil {
				v.errorf(idx(p+".fromHeaders", j), "location header name must be non-null")
			} else if h.Name == "" {
				v.errorf(idx(p+".fromHeaders", j)+".name", "location header name must be non-empty string")
			}
		}
		for j, q := range r.FromParams {
			if q == "" {
				v.errorf(idx(p+".fromParams", j), "location query must be non-empty string")
			}
		}
		for j, c := range r.FromCookies {
			if c == "" {
				v.errorf(idx(p+".fromCookies", j), "cookie name must be non-empty string")
			}
		}
		for j, ch := range r.OutputClaimToHeaders {
			cp := idx(p+".outputClaimToHeaders", j)
			switch {
			case ch == nil:
				v.errorf(cp, "outputClaimToHeaders must not be null")
			case ch.Claim == "" || ch.Header == "":
				v.errorf(cp, "outputClaimToHeaders header and claim value must be non-empty string")
			default:
				v.headerName(cp+".header", ch.Header, false)
			}
		}
		if r.Timeout != nil {
			v.duration(p+".timeout", r.Timeout)
		}
	}
}

func validatePeerAuthentication(o *Object, v *validator) {
	pa := o.Spec.(*securityv1beta1.PeerAuthentication)
	if pa.Selector != nil {
		v.selectorLabels("spec.selector.matchLabels", pa.Selector.MatchLabels)
	}
	if len(pa.Selector.GetMatchLabels()) == 0 && len(pa.PortLevelMtls) > 0 {
		v.errorf("spec.portLevelMtls", "mesh/namespace peer authentication cannot have port level mTLS (set a selector with labels)")
	}
	if pa.PortLevelMtls != nil && len(pa.PortLevelMtls) == 0 {
		v.errorf("spec.portLevelMtls", "port level mTLS, if defined, must have at least one element")
	}
	for _, port := range slices.Sorted(maps.Keys(pa.PortLevelMtls)) {
		if port == 0 || port > 65535 {
			v.errorf(key("spec.portLevelMtls", strconv.Itoa(int(port))), "port must be in range 1..65535")
		}
	}
}

func validateAuthorizationPolicy(o *Object, v *validator) {
	ap := o.Spec.(*securityv1beta1.AuthorizationPolicy)
	v.policyTargets(ap.Selector, ap.TargetRef, ap.TargetRefs)
	custom := ap.Action == securityv1beta1.AuthorizationPolicy_CUSTOM
	switch {
	case custom && ap.Rules == nil:
		v.errorf("spec.rules", "CUSTOM action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request")
	case custom && ap.GetProvider().GetName() == "":
		v.errorf("spec.provider.name", "`provider.name` must not be empty")
	case ap.Action == securityv1beta1.AuthorizationPolicy_DENY && ap.Rules == nil:
		v.errorf("spec.rules", "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request")
	}
	if ap.GetProvider() != nil && !custom {
		v.errorf("spec.provider", "`provider` must not be with non CUSTOM action, found %s", ap.Action)
	}
	for i, r := range ap.Rules {
		p := idx("spec.rules", i)
		if r == nil {
			v.errorf(p, "`rule` must not be nil")
			continue
		}
		if custom {
			v.customRule(p, r)
		}
		if r.From != nil && len(r.From) == 0 {
			v.errorf(p+".from", "`from` must not be empty")
		}
		for j, f := range r.From {
			fp := idx(p+".from", j)
			switch {
			case f == nil:
				v.errorf(fp, "`from` must not be nil")
			case f.Source == nil:
				v.errorf(fp+".source", "`from.source` must not be nil")
			default:
				v.ruleSource(fp+".source", f.Source)
			}
		}
		if r.To != nil && len(r.To) == 0 {
			v.errorf(p+".to", "`to` must not be empty")
		}
		for j, t := range r.To {
			tp := idx(p+".to", j)
			switch {
			case t == nil:
				v.errorf(tp, "`to` must not be nil")
			case t.Operation == nil:
				v.errorf(tp+".operation", "`to.operation` must not be nil")
			default:
				v.ruleOperation(tp+".operation", t.Operation)
			}
		}
		for j, w := range r.When {
			wp := idx(p+".when", j)
			switch {
			case w.GetKey() == "":
				v.errorf(wp+".key", "`key` must not be empty")
			case len(w.GetValues()) == 0 && len(w.GetNotValues()) == 0:
				v.errorf(wp, "at least one of `values` or `notValues` must be set for key %s", w.GetKey())
			default:
				if msg := conditionError(w.GetKey(), w.GetValues()); msg != "" {
					v.errorf(wp+".values", "invalid `value` for `key` %s: %s", w.GetKey(), msg)
				}
				if msg := conditionError(w.GetKey(), w.GetNotValues()); msg != "" {
					v.errorf(wp+".notValues", "invalid `notValue` for `key` %s: %s", w.GetKey(), msg)
				}
			}
		}
	}
}

// customRule: a CUSTOM action's rules cannot use identities (the external authorizer
// decides before they are known).
func (v *validator) customRule(p string, r *securityv1beta1.Rule) {
	for j, f := range r.From {
		src := f.GetSource()
		for _, c := range []struct {
			set  bool
			name string
		}{
			{len(src.GetNamespaces()) > 0, "From.Namespaces"}, {len(src.GetNotNamespaces()) > 0, "From.NotNamespaces"},
			{len(src.GetServiceAccounts()) > 0, "From.ServiceAccounts"}, {len(src.GetNotServiceAccounts()) > 0, "From.NotServiceAccounts"},
			{len(src.GetTrustDomains()) > 0, "From.TrustDomains"}, {len(src.GetNotTrustDomains()) > 0, "From.NotTrustDomains"},
			{len(src.GetPrincipals()) > 0, "From.Principals"}, {len(src.GetNotPrincipals()) > 0, "From.NotPrincipals"},
			{len(src.GetRequestPrincipals()) > 0, "From.RequestPrincipals"}, {len(src.GetNotRequestPrincipals()) > 0, "From.NotRequestPrincipals"},
		} {
			if c.set {
				v.errorf(idx(p+".from", j)+".source", "%s is currently not supported with CUSTOM action", c.name)
			}
		}
	}
	for j, w := range r.When {
		if w == nil {
			v.errorf(idx(p+".when", j), "when field cannot be nil")
			continue
		}
		k := w.GetKey()
		if k == "source.namespace" || k == "source.serviceAccount" || k == "source.trustDomain" || k == "source.principal" || strings.HasPrefix(k, "request.auth.") {
			v.errorf(idx(p+".when", j)+".key", "%s is currently not supported with CUSTOM action", k)
		}
	}
}

func (v *validator) ruleSource(p string, src *securityv1beta1.Source) {
	if len(src.Principals)+len(src.NotPrincipals)+len(src.Namespaces)+len(src.NotNamespaces) > 0 &&
		len(src.ServiceAccounts)+len(src.NotServiceAccounts) > 0 {
		v.errorf(p, "cannot set serviceAccounts with namespaces or principals")
	}
	if len(src.Principals)+len(src.RequestPrincipals)+len(src.Namespaces)+len(src.IpBlocks)+len(src.RemoteIpBlocks)+
		len(src.NotPrincipals)+len(src.NotRequestPrincipals)+len(src.NotNamespaces)+len(src.NotIpBlocks)+len(src.NotRemoteIpBlocks)+
		len(src.ServiceAccounts)+len(src.NotServiceAccounts)+len(src.TrustDomains)+len(src.NotTrustDomains) == 0 {
		v.errorf(p, "`from.source` must not be empty")
	}
	for _, f := range []struct {
		name string
		ips  []string
	}{{"ipBlocks", src.IpBlocks}, {"notIpBlocks", src.NotIpBlocks}, {"remoteIpBlocks", src.RemoteIpBlocks}, {"notRemoteIpBlocks", src.NotRemoteIpBlocks}} {
		if msg := ipsError(f.ips); msg != "" {
			v.errorf(p+"."+f.name, "%s", msg)
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"principals", src.Principals}, {"requestPrincipals", src.RequestPrincipals}, {"namespaces", src.Namespaces},
		{"ipBlocks", src.IpBlocks}, {"remoteIpBlocks", src.RemoteIpBlocks}, {"notPrincipals", src.NotPrincipals},
		{"notRequestPrincipals", src.NotRequestPrincipals}, {"notNamespaces", src.NotNamespaces}, {"notIpBlocks", src.NotIpBlocks},
		{"notRemoteIpBlocks", src.NotRemoteIpBlocks}} {
		if slices.Contains(f.values, "") {
			v.errorf(p+"."+f.name, "empty value not allowed")
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"serviceAccounts", src.ServiceAccounts}, {"notServiceAccounts", src.NotServiceAccounts}} {
		if msg := serviceAccountsError(f.values); msg != "" {
			v.errorf(p+"."+f.name, "%s", msg)
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"trustDomains", src.TrustDomains}, {"notTrustDomains", src.NotTrustDomains}} {
		msg := wildcardValuesError(f.values)
		for _, td := range f.values {
			if msg == "" && strings.Contains(td, "/") {
				msg = fmt.Sprintf("trust domain must not contain '/': %q", td)
			}
		}
		if msg != "" {
			v.errorf(p+"."+f.name, "%s", msg)
		}
	}
}

func (v *validator) ruleOperation(p string, op *securityv1beta1.Operation) {
	if len(op.Ports)+len(op.Methods)+len(op.Paths)+len(op.Hosts)+len(op.NotPorts)+len(op.NotMethods)+len(op.NotPaths)+len(op.NotHosts) == 0 {
		v.errorf(p, "`to.operation` must not be empty")
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"ports", op.Ports}, {"notPorts", op.NotPorts}} {
		if msg := portsError(f.values); msg != "" {
			v.errorf(p+"."+f.name, "%s", msg)
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"ports", op.Ports}, {"methods", op.Methods}, {"paths", op.Paths}, {"hosts", op.Hosts}, {"notPorts", op.NotPorts},
		{"notMethods", op.NotMethods}, {"notPaths", op.NotPaths}, {"notHosts", op.NotHosts}} {
		if slices.Contains(f.values, "") {
			v.errorf(p+"."+f.name, "empty value not allowed")
		}
	}
	for _, f := range []struct {
		name   string
		values []string
	}{{"paths", op.Paths}, {"notPaths", op.NotPaths}} {
		if msg := pathTemplatesError(f.values); msg != "" {
			v.errorf(p+"."+f.name, "%s", msg)
		}
	}
}

// conditionError checks a `when` condition's values for its key, as Istio does.
func conditionError(k string, values []string) string {
	if slices.Contains(values, "") {
		return "empty value not allowed"
	}
	mapKey := func() string {
		if open := strings.Index(k, "["); strings.HasSuffix(k, "]") && open > 0 && open < len(k)-2 {
			return ""
		}
		return fmt.Sprintf("bad key (%s): should have format a[b]", k)
	}
	switch {
	case strings.HasPrefix(k, "request.headers"), strings.HasPrefix(k, "request.auth.claims"), strings.HasPrefix(k, "experimental.envoy.filters."):
		return mapKey()
	case k == "source.ip", k == "remote.ip", k == "destination.ip":
		return ipsError(values)
	case k == "source.serviceAccount":
		return serviceAccountsError(values)
	case k == "source.trustDomain":
		return wildcardValuesError(values)
	case k == "destination.port":
		return portsError(values)
	case k == "source.namespace", k == "source.principal", k == "request.auth.principal", k == "request.auth.audiences",
		k == "request.auth.presenter", k == "connection.sni":
		return ""
	case k == "destination.namespace":
		return fmt.Sprintf("attribute %s is replaced by the metadata.namespace", k)
	case strings.HasPrefix(k, "destination.labels"):
		return fmt.Sprintf("attribute %s is replaced by the workload selector", k)
	case k == "destination.name", k == "destination.user":
		return fmt.Sprintf("deprecated attribute %s: only supported in v1alpha1", k)
	}
	return "unknown attribute: " + k
}

func ipsError(ips []string) string {
	for _, s := range ips {
		if strings.Contains(s, "/") {
			if _, err := netip.ParsePrefix(s); err != nil {
				return fmt.Sprintf("bad CIDR range (%s): %v", s, err)
			}
		} else if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Sprintf("bad IP address (%s)", s)
		}
	}
	return ""
}

func portsError(ports []string) string {
	for _, s := range ports {
		if p, err := strconv.ParseUint(s, 10, 32); err != nil || p > 65535 {
			return fmt.Sprintf("bad port (%s)", s)
		}
	}
	return ""
}

// serviceAccountsError checks serviceAccounts values: "sa" or "namespace/sa", no wildcard,
// at most 16 of them.
func serviceAccountsError(values []string) string {
	if len(values) > 16 {
		return "may not have more than 16 values"
	}
	for _, s := range values {
		switch {
		case s == "":
			return "empty value not allowed"
		case strings.Contains(s, "*"):
			return "wildcard not allowed"
		case strings.Count(s, "/") > 1:
			return fmt.Sprintf("expected format 'serviceAccount' or 'namespace/serviceAccount', found %q", s)
		case len(s) > 320:
			return fmt.Sprintf("value cannot exceed 320 characters, found %q", s)
		}
		if ns, sa, ok := strings.Cut(s, "/"); ok && (ns == "" || sa == "") {
			return fmt.Sprintf("expected format 'serviceAccount' or 'namespace/serviceAccount', found %q", s)
		}
	}
	return ""
}

// wildcardValuesError: values are non-empty with at most one "*", at the start or end.
func wildcardValuesError(values []string) string {
	for _, s := range values {
		n := strings.Count(s, "*")
		switch {
		case s == "":
			return "empty value not allowed"
		case n > 1:
			return fmt.Sprintf("at most one wildcard is allowed: %q", s)
		case n == 1 && s != "*" && !strings.HasPrefix(s, "*") && !strings.HasSuffix(s, "*"):
			return fmt.Sprintf("wildcard is only allowed at the start or end: %q", s)
		}
	}
	return ""
}

// pathTemplatesError checks paths with {*} and {**} templates: {**} last, no other braces,
// literal segments as RFC 3986 allows.
func pathTemplatesError(paths []string) string {
	for _, path := range paths {
		template := pathtemplate.IsIstio(path)
		anySeen := false
		for _, glob := range strings.Split(strings.Trim(path, "/"), "/") {
			switch {
			case glob == "{*}" && !anySeen:
				continue
			case glob == "{**}" && !anySeen:
				anySeen = true
				continue
			case glob == "{*}" || glob == "{**}":
				return fmt.Sprintf("invalid or unsupported path %s: {**} is not the last operator", path)
			case strings.ContainsAny(glob, "{}"):
				return fmt.Sprintf("invalid or unsupported path %s: contains '{' or '}' beyond a supported path template", path)
			case template && !pathtemplate.IsLiteral(glob):
				return fmt.Sprintf("invalid or unsupported path %s: segment %s is not a valid literal", path, glob)
			}
		}
	}
	return ""
}

// jwksError checks an inline JWKS: a JSON key set ({"keys": [...]}) or a single key, each
// key with its type's required members (RFC 7518: RSA n and e; EC crv, x and y; oct k;
// OKP crv and x).
func jwksError(jwks string) string {
	var doc map[string]any
	if err := json.Unmarshal([]byte(jwks), &doc); err != nil {
		return "not a JSON object: " + err.Error()
	}
	keys := []any{doc}
	if ks, ok := doc["keys"]; ok {
		list, ok := ks.([]any)
		if !ok {
			return `"keys" is not a list`
		}
		keys = list
	}
	required := map[string][]string{"RSA": {"n", "e"}, "EC": {"crv", "x", "y"}, "oct": {"k"}, "OKP": {"crv", "x"}}
	for i, k := range keys {
		key, ok := k.(map[string]any)
		if !ok {
			return fmt.Sprintf("key %d is not an object", i)
		}
		kty, _ := key["kty"].(string)
		members, known := required[kty]
		if !known {
			return fmt.Sprintf("key %d: unsupported kty %q", i, kty)
		}
		for _, m := range members {
			if s, _ := key[m].(string); s == "" {
				return fmt.Sprintf("key %d: %s key without %q", i, kty, m)
			}
		}
	}
	return ""
}

// AnnotationDryRun is Istio's annotation that makes an AuthorizationPolicy log what it
// would decide instead of enforcing it.
const AnnotationDryRun = "istio.io/dry-run"
