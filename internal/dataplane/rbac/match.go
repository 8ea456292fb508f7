package rbac

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// perm is a compiled config.rbac.v3.Permission.
type perm struct {
	src   *resource.Permission
	rules []perm
	not   *perm
	hdr   header
	str   strMatcher // url_path, requested_server_name
	md    metadataMatcher
}

// princ is a compiled config.rbac.v3.Principal.
type princ struct {
	src *resource.Principal
	ids []princ
	not *princ
	hdr header
	str strMatcher // authenticated.principal_name, url_path
	md  metadataMatcher
}

// header is a compiled header matcher: the name in http.Header's canonical form, so a
// lookup costs one map access.
type header struct {
	m         *resource.HeaderMatcher
	canonical string
	str       strMatcher
}

func compileHeader(m *resource.HeaderMatcher) header {
	return header{m: m, canonical: http.CanonicalHeaderKey(m.Name), str: compileString(&m.Value)}
}

// metadataMatcher is a compiled type.matcher.v3.MetadataMatcher.
type metadataMatcher struct {
	m   *resource.MetadataMatcher
	val valueMatcher
}

// valueMatcher is a compiled type.matcher.v3.ValueMatcher.
type valueMatcher struct {
	m     *resource.ValueMatcher
	str   strMatcher
	oneOf *valueMatcher
	or    []valueMatcher
}

func compileMetadata(m *resource.MetadataMatcher) metadataMatcher {
	return metadataMatcher{m: m, val: compileValue(&m.Value)}
}

func compileValue(m *resource.ValueMatcher) valueMatcher {
	out := valueMatcher{m: m, str: compileString(&m.String)}
	if m.OneOf != nil {
		v := compileValue(m.OneOf)
		out.oneOf = &v
	}
	for i := range m.Matchers {
		out.or = append(out.or, compileValue(&m.Matchers[i]))
	}
	return out
}

func compilePerm(p *resource.Permission) perm {
	out := perm{src: p}
	for i := range p.Rules {
		out.rules = append(out.rules, compilePerm(&p.Rules[i]))
	}
	if p.Not != nil {
		n := compilePerm(p.Not)
		out.not = &n
	}
	switch p.Kind {
	case resource.PermHeader:
		out.hdr = compileHeader(&p.Header)
	case resource.PermURLPath, resource.PermRequestedServerName:
		out.str = compileString(&p.String)
	case resource.PermMetadata:
		out.md = compileMetadata(&p.Metadata)
	}
	return out
}

func compilePrinc(p *resource.Principal) princ {
	out := princ{src: p}
	for i := range p.Ids {
		out.ids = append(out.ids, compilePrinc(&p.Ids[i]))
	}
	if p.Not != nil {
		n := compilePrinc(p.Not)
		out.not = &n
	}
	switch p.Kind {
	case resource.PrincHeader:
		out.hdr = compileHeader(&p.Header)
	case resource.PrincAuthenticated:
		if p.Authenticated != nil {
			out.str = compileString(p.Authenticated)
		}
	case resource.PrincURLPath:
		out.str = compileString(&p.Path)
	case resource.PrincMetadata:
		out.md = compileMetadata(&p.Metadata)
	}
	return out
}

func (p *perm) matches(req *Request) bool {
	s := p.src
	switch s.Kind {
	case resource.PermAny:
		return true
	case resource.PermAnd:
		for i := range p.rules {
			if !p.rules[i].matches(req) {
				return false
			}
		}
		return true
	case resource.PermOr:
		return anyPerm(p.rules, req)
	case resource.PermNot:
		return !p.not.matches(req)
	case resource.PermHeader:
		return p.hdr.matches(req)
	case resource.PermURLPath:
		return req.HTTP && p.str.match(req.urlPathOf())
	case resource.PermURITemplate:
		return req.HTTP && s.TemplateRegex != nil && s.TemplateRegex.MatchString(req.urlPathOf())
	case resource.PermDestinationIP:
		return inPrefix(s.CIDR, req.DestinationIP)
	case resource.PermDestinationPort:
		return req.DestinationPort == s.Port
	case resource.PermDestinationPortRange:
		return req.DestinationPort >= s.Port && req.DestinationPort < s.PortEnd
	case resource.PermRequestedServerName:
		return p.str.match(req.SNI)
	case resource.PermMetadata:
		return p.md.matches(req.Metadata)
	}
	return false
}

func (p *princ) matches(req *Request) bool {
	s := p.src
	switch s.Kind {
	case resource.PrincAny:
		return true
	case resource.PrincAnd:
		for i := range p.ids {
			if !p.ids[i].matches(req) {
				return false
			}
		}
		return true
	case resource.PrincOr:
		return anyPrinc(p.ids, req)
	case resource.PrincNot:
		return !p.not.matches(req)
	case resource.PrincAuthenticated:
		if req.Principal == "" {
			return false // no peer certificate: never authenticated
		}
		return s.Authenticated == nil || p.str.match(req.Principal)
	case resource.PrincDirectRemoteIP, resource.PrincSourceIP:
		return inPrefix(s.CIDR, req.DirectRemoteIP)
	case resource.PrincRemoteIP:
		return inPrefix(s.CIDR, req.remoteIP())
	case resource.PrincHeader:
		return p.hdr.matches(req)
	case resource.PrincURLPath:
		return req.HTTP && p.str.match(req.urlPathOf())
	case resource.PrincMetadata:
		return p.md.matches(req.Metadata)
	}
	return false
}

func (req *Request) remoteIP() netip.Addr {
	if req.RemoteIP.IsValid() {
		return req.RemoteIP
	}
	return req.DirectRemoteIP
}

func inPrefix(p netip.Prefix, a netip.Addr) bool {
	return a.IsValid() && p.Contains(a.Unmap())
}

// value returns what the header matcher sees: pseudo-headers from the request line,
// other headers' values joined with "," (Envoy's getAllOfHeaderAsString). ok is false
// when the header is absent (always, on a connection). Headers are looked up by their
// canonical key, as net/http's server stores them.
func (h *header) value(req *Request) (string, bool) {
	if !req.HTTP {
		return "", false
	}
	switch h.m.Name {
	case ":method":
		return req.Method, req.Method != ""
	case ":authority":
		return req.Authority, req.Authority != ""
	case ":path":
		return req.Path, req.Path != ""
	}
	vs, ok := req.Headers[h.canonical]
	switch {
	case !ok || len(vs) == 0:
		return "", false
	case len(vs) == 1:
		return vs[0], true
	}
	return strings.Join(vs, ","), true
}

// matches is Envoy's HeaderUtility::matchHeaders.
func (h *header) matches(req *Request) bool {
	m := h.m
	v, ok := h.value(req)
	if m.Present {
		return ok != m.Invert
	}
	if !ok && m.TreatMissingAsEmpty {
		v, ok = "", true
	}
	if !ok {
		return m.Invert
	}
	return h.str.match(v) != m.Invert
}

// lookupMetadata walks filter/path in md.
func lookupMetadata(m *resource.MetadataMatcher, md Metadata) (any, bool) {
	fields := md.Fields(m.Filter)
	if fields == nil || len(m.Path) == 0 {
		return nil, false
	}
	v, ok := fields[m.Path[0]]
	for _, k := range m.Path[1:] {
		if !ok {
			return nil, false
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			return nil, false
		}
		v, ok = obj[k]
	}
	return v, ok
}

// matches is type.matcher.v3.MetadataMatcher.
func (m *metadataMatcher) matches(md Metadata) bool {
	v, ok := lookupMetadata(m.m, md)
	return m.val.matches(v, ok) != m.m.Invert
}

// matches is type.matcher.v3.ValueMatcher on a JSON-shaped value; ok is false when the
// value is absent.
func (vm *valueMatcher) matches(v any, ok bool) bool {
	m := vm.m
	switch m.Kind {
	case resource.ValuePresent:
		return m.Present && ok
	case resource.ValueNull:
		return ok && v == nil
	}
	if !ok {
		return false
	}
	switch m.Kind {
	case resource.ValueString:
		s, isStr := v.(string)
		return isStr && vm.str.match(s)
	case resource.ValueBool:
		b, isBool := v.(bool)
		return isBool && b == m.Bool
	case resource.ValueDouble:
		f, isNum := v.(float64)
		if !isNum {
			return false
		}
		if m.IsRange {
			return f >= m.Range[0] && f < m.Range[1]
		}
		return f == m.Double
	case resource.ValueList:
		l, isList := v.([]any)
		if !isList {
			return false
		}
		for _, e := range l {
			if vm.oneOf.matches(e, true) {
				return true
			}
		}
		return false
	case resource.ValueOr:
		for i := range vm.or {
			if vm.or[i].matches(v, true) {
				return true
			}
		}
	}
	return false
}

// MetadataMatch is a compiled type.matcher.v3.MetadataMatcher (ext_authz's
// filter_enabled_metadata uses it).
type MetadataMatch struct{ c metadataMatcher }

// NewMetadataMatch compiles m; m must not change afterwards.
func NewMetadataMatch(m *resource.MetadataMatcher) *MetadataMatch {
	return &MetadataMatch{c: compileMetadata(m)}
}

// Matches reports whether md matches.
func (m *MetadataMatch) Matches(md Metadata) bool { return m.c.matches(md) }
