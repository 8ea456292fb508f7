package config

// AuthorizationPolicy validation beyond the basics in validate_other.go, after Istio's
// pkg/config/validation (ValidateAuthorizationPolicy) and pkg/config/security.

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	securityv1beta1 "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
)

// AnnotationDryRun is Istio's istio.io/dry-run: the policy is evaluated and logged, never
// enforced.
const AnnotationDryRun = "istio.io/dry-run"

// validateAuthorization is the AuthorizationPolicy kind's validation: Istio's basic rules
// (validateAuthorizationPolicy) and the rest of its rules here.
func validateAuthorization(o *Object, v *validator) {
	validateAuthorizationPolicy(o, v)
	ap := o.Spec.(*securityv1beta1.AuthorizationPolicy)
	v.policyTargets(ap.TargetRef, ap.TargetRefs)
	if val, ok := o.Annotations[AnnotationDryRun]; ok {
		if _, err := strconv.ParseBool(val); err != nil {
			v.warnf("metadata.annotations["+AnnotationDryRun+"]", "%q is not a boolean: the policy is enforced", val)
		} else if ap.Action == securityv1beta1.AuthorizationPolicy_CUSTOM && val == "true" {
			v.warnf("metadata.annotations["+AnnotationDryRun+"]", "dry-run is not supported with the CUSTOM action: Lucid ignores this policy")
		}
	}
	for i, r := range ap.Rules {
		if r == nil {
			continue
		}
		v.authzRule(idx("spec.rules", i), ap.Action, r)
	}
}

// policyTargets checks targetRef / targetRefs as Istio does for AuthorizationPolicy and
// RequestAuthentication (the selector is checked by the callers).
func (v *validator) policyTargets(ref *typev1beta1.PolicyTargetReference, refs []*typev1beta1.PolicyTargetReference) {
	if ref != nil && len(refs) > 0 {
		v.errorf("spec", "only one of targetRefs or workloadSelector can be set")
	}
	if ref != nil {
		v.targetRef("spec.targetRef", ref)
	}
	for i, r := range refs {
		v.targetRef(idx("spec.targetRefs", i), r)
	}
}

// allowedTargetRefs are the group/kinds a policy may target (Istio's allowedTargetRefs).
var allowedTargetRefs = []struct{ group, kind string }{
	{"", "Service"},
	{"networking.istio.io", "ServiceEntry"},
	{"gateway.networking.k8s.io", "Gateway"},
	{"gateway.networking.k8s.io", "GatewayClass"},
}

func (v *validator) targetRef(p string, r *typev1beta1.PolicyTargetReference) {
	if r.GetName() == "" {
		v.errorf(p+".name", "targetRef name must be set")
	}
	if r.GetNamespace() != "" {
		v.errorf(p+".namespace", "targetRef namespace must not be set; cross namespace referencing is not supported")
	}
	group := r.GetGroup()
	if group == "core" {
		group = ""
	}
	for _, a := range allowedTargetRefs {
		if a.group == group && a.kind == r.GetKind() {
			return
		}
	}
	v.errorf(p, "targetRef must be to one of Service, networking.istio.io/ServiceEntry, gateway.networking.k8s.io/Gateway, gateway.networking.k8s.io/GatewayClass but was %s/%s", r.GetGroup(), r.GetKind())
}

func (v *validator) authzRule(p string, action securityv1beta1.AuthorizationPolicy_Action, r *securityv1beta1.Rule) {
	custom := action == securityv1beta1.AuthorizationPolicy_CUSTOM
	fromTCP, toTCP, hasFrom, hasTo := false, false, false, false
	for j, f := range r.From {
		fp := idx(p+".from", j)
		if f == nil {
			v.errorf(fp, "`from` must not be nil")
			continue
		}
		src := f.Source
		if src == nil {
			v.errorf(fp+".source", "`from.source` must not be nil")
			continue
		}
		hasFrom = true
		sp := fp + ".source"
		if len(src.Principals)+len(src.NotPrincipals)+len(src.Namespaces)+len(src.NotNamespaces) > 0 &&
			len(src.ServiceAccounts)+len(src.NotServiceAccounts) > 0 {
			v.errorf(sp, "cannot set serviceAccounts with namespaces or principals")
		}
		lists := []struct {
			name   string
			values []string
		}{
			{"principals", src.Principals}, {"notPrincipals", src.NotPrincipals},
			{"requestPrincipals", src.RequestPrincipals}, {"notRequestPrincipals", src.NotRequestPrincipals},
			{"namespaces", src.Namespaces}, {"notNamespaces", src.NotNamespaces},
			{"ipBlocks", src.IpBlocks}, {"notIpBlocks", src.NotIpBlocks},
			{"remoteIpBlocks", src.RemoteIpBlocks}, {"notRemoteIpBlocks", src.NotRemoteIpBlocks},
			{"serviceAccounts", src.ServiceAccounts}, {"notServiceAccounts", src.NotServiceAccounts},
			{"trustDomains", src.TrustDomains}, {"notTrustDomains", src.NotTrustDomains},
		}
		empty := true
		for _, l := range lists {
			if len(l.values) > 0 {
				empty = false
			}
			v.nonEmptyValues(sp+"."+l.name, l.values)
		}
		if empty {
			v.errorf(sp, "`from.source` must not be empty")
		}
		for _, l := range lists[6:10] {
			v.ipBlocks(sp+"."+l.name, l.values)
		}
		v.serviceAccounts(sp+".serviceAccounts", src.ServiceAccounts)
		v.serviceAccounts(sp+".notServiceAccounts", src.NotServiceAccounts)
		v.trustDomains(sp+".trustDomains", src.TrustDomains)
		v.trustDomains(sp+".notTrustDomains", src.NotTrustDomains)
		if custom {
			for _, l := range []struct {
				name string
				set  bool
			}{
				{"namespaces", src.Namespaces != nil}, {"notNamespaces", src.NotNamespaces != nil},
				{"serviceAccounts", src.ServiceAccounts != nil}, {"notServiceAccounts", src.NotServiceAccounts != nil},
				{"trustDomains", src.TrustDomains != nil}, {"notTrustDomains", src.NotTrustDomains != nil},
				{"principals", src.Principals != nil}, {"notPrincipals", src.NotPrincipals != nil},
				{"requestPrincipals", src.RequestPrincipals != nil}, {"notRequestPrincipals", src.NotRequestPrincipals != nil},
			} {
				if l.set {
					v.errorf(sp+"."+l.name, "%s is currently not supported with CUSTOM action", l.name)
				}
			}
		}
		if src.NotPrincipals != nil || src.Principals != nil || src.IpBlocks != nil || src.NotIpBlocks != nil ||
			src.Namespaces != nil || src.NotNamespaces != nil || src.RemoteIpBlocks != nil || src.NotRemoteIpBlocks != nil ||
			src.ServiceAccounts != nil || src.NotServiceAccounts != nil {
			fromTCP = true
		}
	}
	for j, t := range r.To {
		tp := idx(p+".to", j)
		if t == nil {
			v.errorf(tp, "`to` must not be nil")
			continue
		}
		op := t.Operation
		if op == nil {
			v.errorf(tp+".operation", "`to.operation` must not be nil")
			continue
		}
		hasTo = true
		opp := tp + ".operation"
		if len(op.Ports)+len(op.Methods)+len(op.Paths)+len(op.Hosts)+len(op.NotPorts)+len(op.NotMethods)+len(op.NotPaths)+len(op.NotHosts) == 0 {
			v.errorf(opp, "`to.operation` must not be empty")
		}
		for _, l := range []struct {
			name   string
			values []string
		}{
			{"hosts", op.Hosts}, {"notHosts", op.NotHosts}, {"ports", op.Ports}, {"notPorts", op.NotPorts},
			{"methods", op.Methods}, {"notMethods", op.NotMethods}, {"paths", op.Paths}, {"notPaths", op.NotPaths},
		} {
			v.nonEmptyValues(opp+"."+l.name, l.values)
		}
		v.authzPorts(opp+".ports", op.Ports)
		v.authzPorts(opp+".notPorts", op.NotPorts)
		v.pathTemplates(opp+".paths", op.Paths)
		v.pathTemplates(opp+".notPaths", op.NotPaths)
		if op.Ports != nil || op.NotPorts != nil {
			toTCP = true
		}
	}
	for j, w := range r.When {
		wp := idx(p+".when", j)
		if w == nil {
			v.errorf(wp, "when field cannot be nil")
			continue
		}
		if w.Key == "" || len(w.Values)+len(w.NotValues) == 0 {
			continue // reported by validateAuthorizationPolicy
		}
		if custom && (w.Key == "source.namespace" || w.Key == "source.serviceAccount" || w.Key == "source.trustDomain" ||
			w.Key == "source.principal" || strings.HasPrefix(w.Key, "request.auth.")) {
			v.errorf(wp+".key", "%s is currently not supported with CUSTOM action", w.Key)
		}
		if msg := attributeError(w.Key, w.Values); msg != "" {
			v.errorf(wp+".values", "invalid `value` for `key` %s: %s", w.Key, msg)
		}
		if msg := attributeError(w.Key, w.NotValues); msg != "" {
			v.errorf(wp+".notValues", "invalid `notValue` for `key` %s: %s", w.Key, msg)
		}
	}
	if ((hasFrom && !hasTo && !fromTCP) || (hasTo && !toTCP)) && action == securityv1beta1.AuthorizationPolicy_DENY {
		v.warnf(p, "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port")
	}
}

func (v *validator) nonEmptyValues(p string, values []string) {
	for i, s := range values {
		if s == "" {
			v.errorf(idx(p, i), "empty value not allowed")
		}
	}
}

func (v *validator) ipBlocks(p string, values []string) {
	for i, s := range values {
		if msg := ipError(s); msg != "" {
			v.errorf(idx(p, i), "%s", msg)
		}
	}
}

func ipError(s string) string {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Sprintf("bad CIDR range (%s): %v", s, err)
		}
		return ""
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return fmt.Sprintf("bad IP address (%s)", s)
	}
	return ""
}

func (v *validator) authzPorts(p string, values []string) {
	for i, s := range values {
		if n, err := strconv.ParseUint(s, 10, 32); err != nil || n > 65535 {
			v.errorf(idx(p, i), "bad port (%s): must be 0..65535", s)
		}
	}
}

func (v *validator) serviceAccounts(p string, values []string) {
	if len(values) > 16 {
		v.errorf(p, "may not have more than 16 values")
	}
	for i, s := range values {
		if msg := serviceAccountError(s); msg != "" {
			v.errorf(idx(p, i), "%s", msg)
		}
	}
}

func serviceAccountError(s string) string {
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
	return ""
}

func (v *validator) trustDomains(p string, values []string) {
	for i, s := range values {
		if msg := wildcardValueError(s); msg != "" {
			v.errorf(idx(p, i), "%s", msg)
		} else if strings.Contains(s, "/") {
			v.errorf(idx(p, i), "trust domain must not contain '/', found %q", s)
		}
	}
}

func wildcardValueError(s string) string {
	n := strings.Count(s, "*")
	switch {
	case s == "":
		return "empty value not allowed"
	case n > 1:
		return fmt.Sprintf("at most one wildcard is allowed, found %q", s)
	case n == 1 && s != "*" && !strings.HasPrefix(s, "*") && !strings.HasSuffix(s, "*"):
		return fmt.Sprintf("wildcard is only allowed at the start or end, found %q", s)
	}
	return ""
}

// Istio's path templates: "{*}" one segment, "{**}" any number of segments.
const (
	matchOneTemplate = "{*}"
	matchAnyTemplate = "{**}"
)

var pathLiteral = regexp.MustCompile(`^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$`)

// ContainsPathTemplate reports whether an AuthorizationPolicy path uses {*} or {**}.
func ContainsPathTemplate(p string) bool {
	return strings.Contains(p, matchOneTemplate) || strings.Contains(p, matchAnyTemplate)
}

// pathTemplates is Istio's CheckValidPathTemplate.
func (v *validator) pathTemplates(p string, paths []string) {
	for i, path := range paths {
		tmpl := ContainsPathTemplate(path)
		anySeen := false
		for _, glob := range strings.Split(strings.Trim(path, "/"), "/") {
			switch {
			case (glob == matchOneTemplate || glob == matchAnyTemplate) && anySeen:
				v.errorf(idx(p, i), "invalid or unsupported path %s: {**} is not the last operator", path)
				return
			case glob == matchOneTemplate:
				continue
			case glob == matchAnyTemplate:
				anySeen = true
				continue
			case strings.ContainsAny(glob, "{}"):
				v.errorf(idx(p, i), "invalid or unsupported path %s: contains '{' or '}' beyond a supported path template", path)
				return
			case tmpl && !pathLiteral.MatchString(glob):
				v.errorf(idx(p, i), "invalid or unsupported path %s: contains segment %s with invalid string literal", path, glob)
				return
			}
		}
	}
}

// attributeError is Istio's ValidateAttribute for a `when` condition.
func attributeError(key string, values []string) string {
	for _, s := range values {
		if s == "" {
			return "empty value not allowed"
		}
	}
	mapKey := func() string {
		open := strings.Index(key, "[")
		if strings.HasSuffix(key, "]") && open > 0 && open < len(key)-2 {
			return ""
		}
		return fmt.Sprintf("bad key (%s): should have format a[b]", key)
	}
	switch {
	case strings.HasPrefix(key, "request.headers"):
		return mapKey()
	case key == "source.ip", key == "remote.ip", key == "destination.ip":
		for _, s := range values {
			if msg := ipError(s); msg != "" {
				return msg
			}
		}
	case key == "source.serviceAccount":
		for _, s := range values {
			if msg := serviceAccountError(s); msg != "" {
				return msg
			}
		}
	case key == "source.trustDomain":
		for _, s := range values {
			if msg := wildcardValueError(s); msg != "" {
				return msg
			}
		}
	case key == "source.namespace", key == "source.principal", key == "request.auth.principal",
		key == "request.auth.audiences", key == "request.auth.presenter", key == "connection.sni":
	case strings.HasPrefix(key, "request.auth.claims"), strings.HasPrefix(key, "experimental.envoy.filters."):
		return mapKey()
	case key == "destination.port":
		for _, s := range values {
			if n, err := strconv.ParseUint(s, 10, 32); err != nil || n > 65535 {
				return fmt.Sprintf("bad port (%s)", s)
			}
		}
	case key == "destination.namespace":
		return fmt.Sprintf("attribute %s is replaced by the metadata.namespace", key)
	case strings.HasPrefix(key, "destination.labels"):
		return fmt.Sprintf("attribute %s is replaced by the workload selector", key)
	case key == "destination.name", key == "destination.user":
		return fmt.Sprintf("deprecated attribute %s: only supported in v1alpha1", key)
	default:
		return fmt.Sprintf("unknown attribute: %s", key)
	}
	return ""
}
