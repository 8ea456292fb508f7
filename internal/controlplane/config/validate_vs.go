package config

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// retryOn lists the retry conditions Envoy accepts (x-envoy-retry-on and
// x-envoy-retry-grpc-on); HTTP status codes are accepted as well.
var retryOn = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "reset-before-request": true,
	"connect-failure": true, "retriable-4xx": true, "refused-stream": true,
	"retriable-status-codes": true, "retriable-headers": true, "envoy-ratelimited": true,
	"http3-post-connect-failure": true,
	"cancelled":                  true, "deadline-exceeded": true, "internal": true, "resource-exhausted": true,
	"unavailable": true,
}

var grpcStatuses = map[string]bool{
	"OK": true, "CANCELLED": true, "UNKNOWN": true, "INVALID_ARGUMENT": true, "DEADLINE_EXCEEDED": true,
	"NOT_FOUND": true, "ALREADY_EXISTS": true, "PERMISSION_DENIED": true, "RESOURCE_EXHAUSTED": true,
	"FAILED_PRECONDITION": true, "ABORTED": true, "OUT_OF_RANGE": true, "UNIMPLEMENTED": true,
	"INTERNAL": true, "UNAVAILABLE": true, "DATA_LOSS": true, "UNAUTHENTICATED": true,
}

// corsMethods are the methods a CORS policy may allow ("*": any).
var corsMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodConnect: true,
	http.MethodOptions: true, http.MethodTrace: true, "*": true,
}

func validateVirtualService(o *Object, v *validator) {
	vs := o.Spec.(*networkingv1alpha3.VirtualService)
	// A VirtualService without hosts is a delegate: it can only be reached through a
	// root VirtualService's http[].delegate, and only carries http routes.
	delegate := len(vs.Hosts) == 0
	if delegate {
		if len(vs.Gateways) > 0 {
			v.errorf("spec.gateways", "a delegate virtual service (no hosts) must not specify gateways")
		}
		if len(vs.Tcp) > 0 {
			v.errorf("spec.tcp", "a delegate virtual service (no hosts) must not have tcp routes")
		}
		if len(vs.Tls) > 0 {
			v.errorf("spec.tls", "a delegate virtual service (no hosts) must not have tls routes")
		}
	}
	// Istio's rule: bound to gateways unless "mesh" is one of them (no gateways: the mesh).
	toGateway := len(vs.Gateways) > 0 && !slices.Contains(vs.Gateways, "mesh")
	v.gatewayNames("spec.gateways", vs.Gateways, true)
	if !toGateway {
		for i, r := range vs.Http {
			for j, m := range r.GetMatch() {
				for _, hs := range []map[string]*networkingv1alpha3.StringMatch{m.GetHeaders(), m.GetWithoutHeaders()} {
					for _, k := range sortedKeys(hs) {
						if JWTClaimHeader(k) {
							v.errorf(fmt.Sprintf("spec.http[%d].match[%d].headers", i, j), "JWT claim based routing (key: %s) is only supported for gateway, found no gateways: %v", k, vs.Gateways)
						}
					}
				}
			}
		}
	}
	valid := true
	for i, h := range vs.Hosts {
		p := idx("spec.hosts", i)
		msg := wildcardDomainError(h)
		if toGateway && strings.HasPrefix(h, "outbound_") && sniRoutes(vs) {
			msg = "" // Istio's auto-generated SNI names (outbound_.<port>_._.<host>)
		}
		switch {
		case msg != "" && !isIP(h):
			v.errorf(p, "%s", msg)
			valid = false
		case msg == "" && !toGateway && h == "*":
			v.errorf(p, "wildcard host * is not allowed for virtual services bound to the mesh gateway")
			valid = false
		}
	}
	if valid {
		for i := range vs.Hosts {
			for j := i + 1; j < len(vs.Hosts); j++ {
				if HostsMatch(vs.Hosts[i], vs.Hosts[j]) {
					v.errorf(idx("spec.hosts", j), "duplicate hosts in virtual service: %s & %s", vs.Hosts[i], vs.Hosts[j])
				}
			}
		}
	}
	if len(vs.Http) == 0 && len(vs.Tcp) == 0 && len(vs.Tls) == 0 {
		v.errorf("spec", "http, tcp or tls must be provided in virtual service")
	}
	for i, r := range vs.Http {
		v.httpRoute(idx("spec.http", i), r, delegate)
	}
	for i, r := range vs.Tcp {
		v.tcpRoute(idx("spec.tcp", i), r)
	}
	for i, r := range vs.Tls {
		v.tlsRoute(idx("spec.tls", i), r, vs.Hosts, toGateway)
	}
	v.exportTo("spec.exportTo", vs.ExportTo, false, false)
}

func sniRoutes(vs *networkingv1alpha3.VirtualService) bool {
	for _, t := range vs.Tls {
		for _, m := range t.GetMatch() {
			if len(m.GetSniHosts()) > 0 {
				return true
			}
		}
	}
	return false
}

// HostsMatch is Istio's host.Name.Matches: equal, or one wildcard covering the other.
func HostsMatch(a, b string) bool {
	aw, bw := strings.HasPrefix(a, "*"), strings.HasPrefix(b, "*")
	switch {
	case aw && bw:
		if len(a) < len(b) {
			return strings.HasSuffix(b[1:], a[1:])
		}
		return strings.HasSuffix(a[1:], b[1:])
	case aw:
		return strings.HasSuffix(b, a[1:])
	case bw:
		return strings.HasSuffix(a, b[1:])
	}
	return a == b
}

// JWTClaimHeader reports whether a header name is Istio's JWT claim pseudo-header
// (@request.auth.claims.name, @request.auth.claims[name]).
func JWTClaimHeader(h string) bool {
	const prefix = "@request.auth.claims"
	if !strings.HasPrefix(strings.ToLower(h), prefix) {
		return false
	}
	rest := h[len(prefix):]
	return strings.HasPrefix(rest, ".") && len(rest) > 1 ||
		strings.HasPrefix(rest, "[") && strings.HasSuffix(rest, "]") && len(rest) > 2
}

// gatewayNames checks gateway references as Istio does: "namespace/name" with DNS labels,
// or a name (an FQDN; "name.namespace" is the legacy form, which Istio warns about). As
// in Istio, the first name without "/" ends the check of the list.
func (v *validator) gatewayNames(path string, names []string, warn bool) {
	for i, g := range names {
		p := idx(path, i)
		ns, name, ok := strings.Cut(g, "/")
		if !ok {
			if first, rest, dotted := strings.Cut(g, "."); dotted && warn {
				rest, _, _ = strings.Cut(rest, ".")
				v.warnf(p, "using legacy gatewayName format %q; prefer the <namespace>/<name> format: %q", g, rest+"/"+first)
			}
			if msg := fqdnError(g); msg != "" {
				v.errorf(p, "invalid gateway name %q: %s", g, msg)
			}
			return
		}
		if ns == "" || name == "" {
			v.errorf(p, "config namespace and gateway name cannot be empty")
		}
		if !isDNS1123LabelAnyCase(ns) {
			v.errorf(p, "invalid value for namespace: %q", ns)
		}
		if !isDNS1123LabelAnyCase(name) {
			v.errorf(p, "invalid value for gateway name: %q", name)
		}
	}
}

func (v *validator) httpRoute(p string, r *networkingv1alpha3.HTTPRoute, delegate bool) {
	if r == nil {
		v.errorf(p, "http route may not be null")
		return
	}
	v.routeConflicts(p, r, delegate)
	for j, m := range r.Match {
		v.httpMatch(idx(p+".match", j), m)
	}
	v.headerOps(p+".headers", r.Headers)
	v.authorityRewrite(p, r.Rewrite, r.Headers)
	v.cors(p+".corsPolicy", r.CorsPolicy)
	v.fault(p+".fault", r.Fault)
	if r.MirrorPercent != nil { //nolint:staticcheck // deprecated field still accepted
		if val := r.MirrorPercent.GetValue(); val > 100 { //nolint:staticcheck // SA1019: mirror_percent is deprecated but Istio still validates it
			v.errorf(p+".mirrorPercent", "mirror_percent must have a max value of 100 (it has %d)", val)
		}
		v.warnf(p+".mirrorPercent", `using deprecated setting "mirrorPercent", use "mirrorPercentage" instead`)
	}
	if r.MirrorPercentage != nil {
		if val := r.MirrorPercentage.GetValue(); val < 0 || val > 100 {
			v.errorf(p+".mirrorPercentage.value", "mirror percentage %g is not in range 0..100", val)
		}
	}
	v.destination(p+".mirror", r.Mirror)
	for j, m := range r.Mirrors {
		mp := idx(p+".mirrors", j)
		if m == nil {
			v.errorf(mp, "mirror cannot be null")
			continue
		}
		if m.Destination == nil {
			v.errorf(mp+".destination", "destination is required for mirrors")
			continue
		}
		v.destination(mp+".destination", m.Destination)
		if val := m.GetPercentage().GetValue(); val < 0 || val > 100 {
			v.errorf(mp+".percentage.value", "mirror percentage %g is not in range 0..100", val)
		}
	}
	v.redirect(p+".redirect", r.Redirect, r.Match)
	v.directResponse(p+".directResponse", r.DirectResponse)
	v.retries(p+".retries", r.Retries)
	v.rewrite(p+".rewrite", r.Rewrite)
	v.duration(p+".timeout", r.Timeout)
	var total int32
	for j, d := range r.Route {
		dp := idx(p+".route", j)
		if d == nil {
			v.errorf(dp, "route destination may not be null")
			continue
		}
		if d.Destination == nil {
			v.errorf(dp+".destination", "destination is required")
		}
		v.destination(dp+".destination", d.Destination)
		v.headerOps(dp+".headers", d.Headers)
		if d.Weight < 0 {
			v.errorf(dp+".weight", "weight %d < 0", d.Weight)
		}
		total += d.Weight
	}
	if len(r.Route) > 1 && total == 0 {
		v.errorf(p+".route", "total destination weight = 0")
	}
}

// routeConflicts checks which of route, redirect, directResponse and delegate a rule
// sets, as Istio does.
func (v *validator) routeConflicts(p string, r *networkingv1alpha3.HTTPRoute, delegate bool) {
	if r.Delegate != nil && !delegate {
		if r.Redirect != nil {
			v.errorf(p+".redirect", "root HTTP route %s must not specify redirect", r.Name)
		}
		if r.Route != nil {
			v.errorf(p+".route", "root HTTP route %s must not specify route", r.Name)
		}
		if r.Delegate.Name == "" {
			v.lucidWarnf(p+".delegate.name", "delegate name is empty: the rule delegates to nothing")
		}
		return
	}
	if delegate && r.Delegate != nil {
		v.errorf(p+".delegate", "delegate HTTP route cannot contain delegate")
	}
	switch {
	case r.Redirect != nil:
		if len(r.Route) > 0 {
			v.errorf(p, "HTTP route cannot contain both route and redirect")
		}
		if r.Fault != nil {
			v.errorf(p, "HTTP route cannot contain both fault and redirect")
		}
		if r.Rewrite != nil {
			v.errorf(p, "HTTP route rule cannot contain both rewrite and redirect")
		}
		if r.DirectResponse != nil {
			v.errorf(p, "HTTP route rule cannot contain both direct_response and redirect")
		}
	case r.DirectResponse != nil:
		if len(r.Route) > 0 {
			v.errorf(p, "HTTP route cannot contain both route and direct_response")
		}
		if r.Fault != nil {
			v.errorf(p, "HTTP route cannot contain both fault and direct_response")
		}
		if r.Rewrite != nil {
			v.errorf(p, "HTTP route rule cannot contain both rewrite and direct_response")
		}
	case len(r.Route) == 0:
		v.errorf(p, "HTTP route, redirect or direct_response is required")
	}
	if r.Mirror != nil && len(r.Mirrors) > 0 {
		v.errorf(p, "HTTP route cannot contain both mirror and mirrors")
	}
}

func (v *validator) httpMatch(p string, m *networkingv1alpha3.HTTPMatchRequest) {
	if m == nil {
		return
	}
	if isRegex(m.GetUri()) {
		v.regex(p+".uri.regex", m.GetUri().GetRegex()) // of the uri, Istio checks only a regex
	}
	v.stringMatch(p+".scheme", m.Scheme)
	v.stringMatch(p+".method", m.Method)
	v.stringMatch(p+".authority", m.Authority)
	for _, name := range sortedKeys(m.Headers) {
		hp := key(p+".headers", name)
		if m.Headers[name] == nil {
			v.errorf(hp, "header match %v cannot be null", name)
		}
		v.headerName(hp, name, true)
		v.stringMatch(hp, m.Headers[name])
	}
	for _, name := range sortedKeys(m.WithoutHeaders) {
		hp := key(p+".withoutHeaders", name)
		v.headerName(hp, name, true)
		if sm := m.WithoutHeaders[name]; sm.GetRegex() != "*" { // "*": the header is absent
			v.stringMatch(hp, sm)
		}
	}
	for _, name := range sortedKeys(m.QueryParams) {
		v.stringMatch(key(p+".queryParams", name), m.QueryParams[name])
	}
	if m.Port != 0 {
		v.port(p+".port", m.Port)
	}
	v.labels(p+".sourceLabels", m.SourceLabels)
	v.gatewayNames(p+".gateways", m.Gateways, false)
	if m.SourceNamespace != "" && !isDNS1123LabelAnyCase(m.SourceNamespace) {
		v.errorf(p+".sourceNamespace", "sourceNamespace match %s is invalid", m.SourceNamespace)
	}
}

func isRegex(sm *networkingv1alpha3.StringMatch) bool {
	_, ok := sm.GetMatchType().(*networkingv1alpha3.StringMatch_Regex)
	return ok
}

// stringMatch checks a StringMatch: a prefix must not be empty, a regex must compile.
func (v *validator) stringMatch(p string, sm *networkingv1alpha3.StringMatch) {
	switch t := sm.GetMatchType().(type) {
	case *networkingv1alpha3.StringMatch_Prefix:
		if t.Prefix == "" {
			v.errorf(p+".prefix", "prefix string match should not be empty")
		}
	case *networkingv1alpha3.StringMatch_Regex:
		v.regex(p+".regex", t.Regex)
	}
}

// headerTokenChars are the characters of an HTTP header name (RFC 7230 tchar).
var headerToken = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~A-Za-z0-9]+$")

// pseudoHeaders may be matched by name.
var pseudoHeaders = map[string]bool{":method": true, ":scheme": true, ":authority": true, ":path": true, ":status": true}

// headerName checks a header name to match (claims: also a JWT claim or a pseudo-header,
// as in a route match) or a strict name (claims false: letters, digits, '-' and '_').
func (v *validator) headerName(p, name string, claims bool) {
	switch {
	case name == "":
		v.errorf(p, "header name cannot be empty")
	case claims && (JWTClaimHeader(name) || pseudoHeaders[name] || headerToken.MatchString(name)):
	case !claims && headerName.MatchString(name):
	default:
		v.errorf(p, "header name %q is not a valid header name", name)
	}
}

func (v *validator) headerOps(p string, h *networkingv1alpha3.Headers) {
	if h == nil {
		return
	}
	ops := func(op string, o *networkingv1alpha3.Headers_HeaderOperations, request bool) {
		if o == nil {
			return
		}
		check := func(name string, fp string, remove bool) {
			switch {
			case name == "":
				v.errorf(fp, "header name cannot be empty")
			case (remove || !request) && strings.EqualFold(name, "host"):
				v.errorf(fp, "invalid header %q: cannot set Host header", name)
			case strings.HasPrefix(name, ":") && (!request || remove || !strings.EqualFold(name, ":authority")):
				v.errorf(fp, "invalid header %q: header cannot have \":\" prefix", name)
			}
		}
		for _, k := range sortedKeys(o.Set) {
			check(k, key(p+"."+op+".set", k), false)
			v.headerValue(key(p+"."+op+".set", k), o.Set[k])
		}
		for _, k := range sortedKeys(o.Add) {
			check(k, key(p+"."+op+".add", k), false)
			v.headerValue(key(p+"."+op+".add", k), o.Add[k])
		}
		for i, k := range o.Remove {
			check(k, idx(p+"."+op+".remove", i), true)
		}
	}
	ops("request", h.Request, true)
	ops("response", h.Response, false)
}

func (v *validator) headerValue(p, val string) {
	if !headerValue.MatchString(val) {
		v.errorf(p, "header value %q contains control characters", val)
		return
	}
	if err := headerValueError(val); err != nil {
		v.errorf(p, "header value %q: %v", val, err)
	}
}

// headerValueError parses Envoy's header value format: literal text, "%%" for a percent
// sign, and %VARIABLE% or %VARIABLE(args)% commands (args: a JSON array of strings or a
// bare string), as Envoy's (and Istio's) parser does.
func headerValueError(val string) error {
	const (
		literal = iota
		variable
		expectArray
		expectDelimiterOrEnd
		expectString
		inString
		expectArgsEnd
		expectVariableEnd
	)
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	state := literal
	for i := 0; i < len(val); i++ {
		c := val[i]
		switch state {
		case literal:
			if c != '%' {
				continue
			}
			if i+1 >= len(val) {
				return errors.New("unescaped % (write %% for a literal percent sign)")
			}
			if val[i+1] == '%' {
				i++
				continue
			}
			state = variable
		case variable:
			switch c {
			case '%':
				state = literal
			case '(':
				state = expectArray
			}
		case expectArray:
			switch {
			case c == '[':
				state = expectString
			case !space(c):
				state = inString
			}
		case expectDelimiterOrEnd:
			switch {
			case c == ',':
				state = expectString
			case c == ']':
				state = expectArgsEnd
			case !space(c):
				return errors.New("expecting ',', ']', or whitespace")
			}
		case expectString:
			switch {
			case c == '"':
				state = inString
			case !space(c):
				return errors.New(`expecting '"'`)
			}
		case inString:
			switch c {
			case '\\':
				if i+1 >= len(val) {
					return errors.New("un-terminated backslash in JSON string")
				}
				i++
			case ')':
				state = expectVariableEnd
			case '"':
				state = expectDelimiterOrEnd
			}
		case expectArgsEnd:
			switch {
			case c == ')':
				state = expectVariableEnd
			case !space(c):
				return errors.New("expecting ')' or whitespace")
			}
		case expectVariableEnd:
			switch {
			case c == '%':
				state = literal
			case !space(c):
				return errors.New("expecting '%' or whitespace")
			}
		}
	}
	if state != literal {
		return errors.New("un-terminated variable expression")
	}
	return nil
}

func (v *validator) authorityRewrite(p string, rw *networkingv1alpha3.HTTPRewrite, h *networkingv1alpha3.Headers) {
	current := rw.GetAuthority()
	for _, m := range []map[string]string{h.GetRequest().GetSet(), h.GetRequest().GetAdd()} {
		for _, k := range sortedKeys(m) {
			if !strings.EqualFold(k, ":authority") && !strings.EqualFold(k, "host") {
				continue
			}
			if current != "" {
				v.errorf(p+".headers.request", "authority header cannot be set multiple times: have %q, attempting to set %q", current, m[k])
				return
			}
			current = m[k]
		}
	}
}

func (v *validator) cors(p string, c *networkingv1alpha3.CorsPolicy) {
	if c == nil {
		return
	}
	for i, o := range c.AllowOrigins {
		op := idx(p+".allowOrigins", i)
		if o.GetExact() == "" && o.GetPrefix() == "" && o.GetRegex() == "" {
			v.errorf(op, "'' is not a valid match type for CORS allow origins")
			continue
		}
		if re := o.GetRegex(); re != "" {
			v.regex(op+".regex", re)
		}
	}
	for i, m := range c.AllowMethods {
		if !corsMethods[m] {
			v.errorf(idx(p+".allowMethods", i), "%q is not a supported HTTP method", m)
		}
	}
	for i, h := range c.AllowHeaders {
		v.corsHeaderName(idx(p+".allowHeaders", i), h)
	}
	for i, h := range c.ExposeHeaders {
		v.corsHeaderName(idx(p+".exposeHeaders", i), h)
	}
	if c.MaxAge != nil {
		v.duration(p+".maxAge", c.MaxAge)
		if c.MaxAge.Nanos > 0 {
			v.errorf(p+".maxAge", "max_age duration is accurate only to seconds precision")
		}
	}
}

func (v *validator) corsHeaderName(p, name string) {
	switch {
	case name == "":
		v.errorf(p, "header name cannot be empty")
	case name != "*" && !headerToken.MatchString(name):
		v.errorf(p, "header name %q is not a valid header name", name)
	}
}

func (v *validator) percentage(p string, pct *networkingv1alpha3.Percent) {
	if pct == nil {
		return
	}
	if val := pct.Value; val < 0 || val > 100 || (val > 0 && val < 0.0001) {
		v.errorf(p+".value", "percentage %g is neither 0.0, nor in range [0.0001, 100.0]", val)
	}
}

func (v *validator) fault(p string, f *networkingv1alpha3.HTTPFaultInjection) {
	if f == nil {
		return
	}
	if f.Abort == nil && f.Delay == nil {
		v.errorf(p, "HTTP fault injection must have an abort and/or a delay")
	}
	if a := f.Abort; a != nil {
		v.percentage(p+".abort.percentage", a.Percentage)
		switch t := a.ErrorType.(type) {
		case *networkingv1alpha3.HTTPFaultInjection_Abort_HttpStatus:
			if t.HttpStatus < 200 || t.HttpStatus > 599 {
				v.errorf(p+".abort.httpStatus", "HTTP status %d is not in range 200-599", t.HttpStatus)
			}
		case *networkingv1alpha3.HTTPFaultInjection_Abort_GrpcStatus:
			if !grpcStatuses[t.GrpcStatus] {
				v.errorf(p+".abort.grpcStatus", "gRPC status %q is not supported (use a name such as NOT_FOUND or UNAVAILABLE)", t.GrpcStatus)
			}
		case *networkingv1alpha3.HTTPFaultInjection_Abort_Http2Error:
			v.errorf(p+".abort.http2Error", "HTTP/2 abort fault injection not supported yet")
		default:
			v.lucidWarnf(p+".abort", "abort configured, but error type not set: no request is aborted")
		}
	}
	if d := f.Delay; d != nil {
		v.percentage(p+".delay.percentage", d.Percentage)
		switch t := d.HttpDelayType.(type) {
		case *networkingv1alpha3.HTTPFaultInjection_Delay_FixedDelay:
			v.duration(p+".delay.fixedDelay", t.FixedDelay)
		case *networkingv1alpha3.HTTPFaultInjection_Delay_ExponentialDelay:
			v.errorf(p+".delay.exponentialDelay", "exponentialDelay not supported yet")
		}
	}
}

func (v *validator) destination(p string, d *networkingv1alpha3.Destination) {
	if d == nil {
		return
	}
	if d.Host == "*" {
		v.errorf(p+".host", "invalid destination host %s", d.Host)
	} else if msg := wildcardDomainError(d.Host); msg != "" {
		if d.Host == "" {
			msg = "destination host is required"
		}
		v.errorf(p+".host", "%s", msg)
	}
	if d.Subset != "" && !isDNS1123LabelAnyCase(d.Subset) {
		v.errorf(p+".subset", "subset name is invalid: %s", d.Subset)
	}
	if d.Port != nil {
		v.port(p+".port.number", d.Port.Number)
	}
}

func (v *validator) redirect(p string, r *networkingv1alpha3.HTTPRedirect, matches []*networkingv1alpha3.HTTPMatchRequest) {
	if r == nil {
		return
	}
	if r.Uri != "" && r.PrefixRewrite != "" {
		v.errorf(p, "redirect may only specify one of uri or prefix_rewrite")
		return
	}
	if r.PrefixRewrite != "" {
		for _, m := range matches {
			if _, prefix := m.GetUri().GetMatchType().(*networkingv1alpha3.StringMatch_Prefix); m.GetUri() != nil && !prefix {
				v.errorf(p+".prefixRewrite", "redirect prefix_rewrite requires all URI matches to use prefix match type")
				return
			}
		}
	}
	switch {
	case r.Uri == "" && r.PrefixRewrite == "" && r.Authority == "" && r.RedirectPort == nil && r.Scheme == "":
		v.errorf(p, "redirect must specify URI, authority, scheme, or port")
	case r.RedirectCode != 0 && (r.RedirectCode < 300 || r.RedirectCode > 399):
		v.errorf(p+".redirectCode", "%d is not a valid redirect code, must be 3xx", r.RedirectCode)
	case r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https":
		v.errorf(p+".scheme", `invalid redirect scheme, must be "http" or "https"`)
	case r.GetPort() > 0:
		v.port(p+".port", r.GetPort())
	}
}

func (v *validator) directResponse(p string, d *networkingv1alpha3.HTTPDirectResponse) {
	if d == nil {
		return
	}
	if d.Status < 200 || d.Status > 599 {
		v.errorf(p+".status", "HTTP status %d is not in range 200-599", d.Status)
	}
	size := len(d.GetBody().GetString_()) + len(d.GetBody().GetBytes())
	switch {
	case size > 1<<20:
		v.errorf(p+".body", "large direct_responses may impact control plane performance, must be less than 1MB")
	case size > 100<<10:
		v.warnf(p+".body", "large direct_responses may impact control plane performance")
	}
}

func (v *validator) retries(p string, r *networkingv1alpha3.HTTPRetry) {
	if r == nil {
		return
	}
	if r.Attempts < 0 {
		v.errorf(p+".attempts", "attempts cannot be negative")
	}
	if r.Attempts == 0 && (r.PerTryTimeout != nil || r.RetryOn != "" || r.RetryRemoteLocalities != nil) {
		v.errorf(p, "http retry policy configured when attempts are set to 0 (disabled)")
	}
	v.duration(p+".perTryTimeout", r.PerTryTimeout)
	if r.RetryOn != "" {
		for _, cond := range strings.Split(r.RetryOn, ",") {
			code, err := strconv.Atoi(cond)
			if err == nil && code >= 100 && code <= 599 && http.StatusText(code) != "" {
				continue
			}
			if !retryOn[cond] {
				v.errorf(p+".retryOn", "%q is not a valid retryOn policy", cond)
			}
		}
	}
	v.duration(p+".backoff", r.Backoff)
}

func (v *validator) rewrite(p string, r *networkingv1alpha3.HTTPRewrite) {
	if r == nil {
		return
	}
	switch {
	case r.Uri != "" && r.UriRegexRewrite != nil:
		v.errorf(p, "rewrite may only contain one of uri or uriRegexRewrite")
	case r.Uri == "" && r.UriRegexRewrite == nil && r.Authority == "":
		v.errorf(p, "rewrite must specify at least one of uri, uriRegexRewrite or authority")
	}
	if rr := r.UriRegexRewrite; rr != nil {
		if rr.Match == "" || rr.Rewrite == "" {
			v.errorf(p+".uriRegexRewrite", "uriRegexRewrite requires both rewrite and match")
		} else {
			v.regex(p+".uriRegexRewrite.match", rr.Match)
		}
	}
}

func (v *validator) subnet(p, s string) {
	if strings.Count(s, "/") == 1 {
		if _, err := netip.ParsePrefix(s); err != nil {
			v.errorf(p, "%q is not a valid CIDR block", s)
		}
		return
	}
	if !isIP(s) {
		v.errorf(p, "%q is not a valid IP address", s)
	}
}

func (v *validator) tcpRoute(p string, r *networkingv1alpha3.TCPRoute) {
	if r == nil {
		return
	}
	for j, m := range r.Match {
		mp := idx(p+".match", j)
		if m == nil {
			v.errorf(mp, "tcp match may not be nil")
			continue
		}
		for k, s := range m.DestinationSubnets {
			v.subnet(idx(mp+".destinationSubnets", k), s)
		}
		if m.Port != 0 {
			v.port(mp+".port", m.Port)
		}
		v.labels(mp+".sourceLabels", m.SourceLabels)
		v.gatewayNames(mp+".gateways", m.Gateways, false)
	}
	if len(r.Route) == 0 {
		v.errorf(p+".route", "TCP route is required")
	}
	v.routeDestinations(p+".route", r.Route)
}

func (v *validator) tlsRoute(p string, r *networkingv1alpha3.TLSRoute, hosts []string, toGateway bool) {
	if r == nil {
		return
	}
	if len(r.Match) == 0 {
		v.errorf(p+".match", "TLS route must have at least one match condition")
	}
	for j, m := range r.Match {
		mp := idx(p+".match", j)
		if m == nil {
			v.errorf(mp, "TLS match may not be null")
			continue
		}
		if len(m.SniHosts) == 0 {
			v.errorf(mp+".sniHosts", "TLS match must have at least one SNI host")
		}
		for k, sni := range m.SniHosts {
			sp := idx(mp+".sniHosts", k)
			msg := wildcardDomainError(sni)
			if toGateway && strings.HasPrefix(sni, "outbound_") {
				msg = "" // Istio's auto-generated SNI names (outbound_.<port>_._.<host>)
			}
			if msg != "" {
				if isIP(sni) {
					v.warnf(sp, "using an IP address (%q) goes against SNI spec and most clients do not support this", sni)
				} else {
					v.errorf(sp, "%s", msg)
				}
				continue
			}
			if !sniCovered(sni, hosts) {
				v.errorf(sp, "SNI host %q is not a compatible subset of any of the virtual service hosts: [%s]", sni, strings.Join(hosts, ", "))
			}
		}
		for k, s := range m.DestinationSubnets {
			v.subnet(idx(mp+".destinationSubnets", k), s)
		}
		if m.Port != 0 {
			v.port(mp+".port", m.Port)
		}
		v.labels(mp+".sourceLabels", m.SourceLabels)
		v.gatewayNames(mp+".gateways", m.Gateways, false)
	}
	if len(r.Route) == 0 {
		v.errorf(p+".route", "TLS route is required")
	}
	v.routeDestinations(p+".route", r.Route)
}

// sniCovered reports whether sni is the same as or a subset of one of hosts
// (wildcards: "*.example.com" covers "a.example.com" and "*.b.example.com").
func sniCovered(sni string, hosts []string) bool {
	for _, h := range hosts {
		if h == "*" || strings.EqualFold(h, sni) {
			return true
		}
		if strings.HasPrefix(h, "*") && strings.HasSuffix(strings.TrimPrefix(sni, "*"), strings.TrimPrefix(h, "*")) {
			return true
		}
	}
	return false
}

func (v *validator) routeDestinations(p string, ds []*networkingv1alpha3.RouteDestination) {
	var total int32
	for j, d := range ds {
		dp := idx(p, j)
		if d == nil {
			v.errorf(dp, "route destination may not be null")
			continue
		}
		if d.Destination == nil {
			v.errorf(dp+".destination", "destination is required")
		}
		v.destination(dp+".destination", d.Destination)
		if d.Weight < 0 {
			v.errorf(dp+".weight", "weight %d < 0", d.Weight)
		}
		total += d.Weight
	}
	if len(ds) > 1 && total == 0 {
		v.errorf(p, "total destination weight = 0")
	}
}
