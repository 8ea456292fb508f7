package rbac

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/pathnorm"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// perm is a compiled config.rbac.v3.Permission.
type perm struct {
	src   *resource.Permission
	rules []perm
	not   *perm
	hdr   header
}

// princ is a compiled config.rbac.v3.Principal.
type princ struct {
	src *resource.Principal
	ids []princ
	not *princ
	hdr header
}

// header is a compiled header matcher: the name in http.Header's canonical form, so a
// lookup costs one map access.
type header struct {
	m         *resource.HeaderMatcher
	canonical string
}

func compileHeader(m *resource.HeaderMatcher) header {
	return header{m: m, canonical: http.CanonicalHeaderKey(m.Name)}
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
	if p.Kind == resource.PermHeader {
		out.hdr = compileHeader(&p.Header)
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
	if p.Kind == resource.PrincHeader {
		out.hdr = compileHeader(&p.Header)
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
		return req.HTTP && matchString(&s.String, pathnorm.Strip(req.Path))
	case resource.PermURITemplate:
		return req.HTTP && s.TemplateRegex != nil && s.TemplateRegex.MatchString(pathnorm.Strip(req.Path))
	case resource.PermDestinationIP:
		return inPrefix(s.CIDR, req.DestinationIP)
	case resource.PermDestinationPort:
		return req.DestinationPort == s.Port
	case resource.PermDestinationPortRange:
		return req.DestinationPort >= s.Port && req.DestinationPort < s.PortEnd
	case resource.PermRequestedServerName:
		return matchString(&s.String, req.SNI)
	case resource.PermMetadata:
		return matchMetadata(&s.Metadata, req.Metadata)
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
		return s.Authenticated == nil || matchString(s.Authenticated, req.Principal)
	case resource.PrincDirectRemoteIP, resource.PrincSourceIP:
		return inPrefix(s.CIDR, req.DirectRemoteIP)
	case resource.PrincRemoteIP:
		return inPrefix(s.CIDR, req.remoteIP())
	case resource.PrincHeader:
		return p.hdr.matches(req)
	case resource.PrincURLPath:
		return req.HTTP && matchString(&s.Path, pathnorm.Strip(req.Path))
	case resource.PrincMetadata:
		return matchMetadata(&s.Metadata, req.Metadata)
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
	return matchString(&m.Value, v) != m.Invert
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

// matchMetadata is type.matcher.v3.MetadataMatcher.
func matchMetadata(m *resource.MetadataMatcher, md Metadata) bool {
	v, ok := lookupMetadata(m, md)
	return matchValue(&m.Value, v, ok) != m.Invert
}

// matchValue is type.matcher.v3.ValueMatcher on a JSON-shaped value; ok is false when the
// value is absent.
func matchValue(m *resource.ValueMatcher, v any, ok bool) bool {
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
		return isStr && matchString(&m.String, s)
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
			if matchValue(m.OneOf, e, true) {
				return true
			}
		}
		return false
	case resource.ValueOr:
		for i := range m.Matchers {
			if matchValue(&m.Matchers[i], v, true) {
				return true
			}
		}
	}
	return false
}

// MatchMetadata is type.matcher.v3.MetadataMatcher on md (ext_authz's
// filter_enabled_metadata uses it).
func MatchMetadata(m *resource.MetadataMatcher, md Metadata) bool { return matchMetadata(m, md) }
