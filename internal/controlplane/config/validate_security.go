package config

import (
	"net/url"
	"strconv"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
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
			v.duration(p+".timeout", r.Timeout, 1e6)
		}
	}
}
