// Package pathtemplate turns path templates into the anchored regular expressions a
// request's path (without its query) is matched against. It is shared by both ends of
// an AuthorizationPolicy path: the control plane's translate writes Istio's templates
// ("/api/{*}/items/{**}") as Envoy uri_template matchers, or as a regex where a
// uri_template cannot carry them, and the sidecar's xdsclient compiles the uri_template
// it receives (Compile).
package pathtemplate

import (
	"fmt"
	"regexp"
	"strings"
)

// The regular expressions Envoy uses for the template operators; a literal is the
// characters of RFC 3986's pchar without '*'.
const (
	literalChars = `a-zA-Z0-9\-._~%!$&'()+,;:@=`
	Segment      = `[` + literalChars + `]+`  // "*" ({*} in Istio): one non-empty segment
	Text         = `[` + literalChars + `/]*` // "**" ({**} in Istio): anything, '/' included
)

var literal = regexp.MustCompile(`^[` + literalChars + `]+$`)

// IsLiteral reports whether s may stand as a literal segment of a template.
func IsLiteral(s string) bool { return literal.MatchString(s) }

// Compile compiles an Envoy uri_template path_template ("/api/*/items/**") into the
// anchored regular expression Envoy matches the path against, rejecting what Envoy
// rejects: a template not starting with '/', an empty or invalid literal, an operator
// after "**". Variables ("{name}") are not supported.
func Compile(t string) (*regexp.Regexp, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("%q must start with /", t)
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f {
			return nil, fmt.Errorf("%q: invalid character %q", t, c)
		}
	}
	var segs []string
	suffix := ""
	rest := t[1:]
	textSeen := false
	for rest != "" {
		var seg string
		switch {
		case strings.HasPrefix(rest, "**"):
			if textSeen {
				return nil, fmt.Errorf("%q: an operator after **", t)
			}
			seg, rest, textSeen = Text, rest[2:], true
		case strings.HasPrefix(rest, "*"):
			if textSeen {
				return nil, fmt.Errorf("%q: an operator after **", t)
			}
			seg, rest = Segment, rest[1:]
		case strings.HasPrefix(rest, "{"):
			return nil, fmt.Errorf("%q: variables are not supported", t)
		default:
			lit, _, _ := strings.Cut(rest, "/")
			if !IsLiteral(lit) {
				return nil, fmt.Errorf("%q: invalid literal %q", t, lit)
			}
			seg, rest = regexp.QuoteMeta(lit), rest[len(lit):]
		}
		segs = append(segs, seg)
		switch {
		case rest == "":
		case rest == "/":
			segs, rest = append(segs, ""), ""
		case rest[0] == '/':
			rest = rest[1:]
		default: // an operator followed by a suffix: "*.txt"
			lit := rest
			if strings.Contains(lit, "/") || !IsLiteral(lit) {
				return nil, fmt.Errorf("%q: invalid suffix %q", t, lit)
			}
			suffix, rest = regexp.QuoteMeta(lit), ""
		}
	}
	return regexp.Compile("^/" + strings.Join(segs, "/") + suffix + "$")
}

// IsIstio reports whether an AuthorizationPolicy path uses Istio's templates {*} (one
// segment) or {**} (any number of segments).
func IsIstio(path string) bool {
	return strings.Contains(path, "{*}") || strings.Contains(path, "{**}")
}

var envoyOperators = strings.NewReplacer("{**}", "**", "{*}", "*")

// URITemplate is an Istio path template as an Envoy uri_template ({*} written *, {**}
// written **), and whether Envoy accepts it: it must start with a single '/' and have no
// empty segment. Istio's validation trims the slashes at both ends before it checks the
// segments, so "{**}", "//{*}" and "/{*}//" pass it; Envoy would reject them.
func URITemplate(path string) (string, bool) {
	return envoyOperators.Replace(path), strings.HasPrefix(path, "/") && !strings.Contains(path, "//")
}

// IstioRegexp is the anchored regular expression for an Istio path template, segment by
// segment as written: {*} one segment, {**} any text, an empty segment empty, a literal
// itself. It matches what the uri_template would where one can be written, and gives the
// others their plain meaning: a template that starts with a literal or {*} rather than
// '/' matches no request's path (as an exact path without '/' does not), one that starts
// with {**} matches from the path's first '/'.
func IstioRegexp(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		switch s {
		case "{*}":
			segs[i] = Segment
		case "{**}":
			segs[i] = Text
		default:
			segs[i] = regexp.QuoteMeta(s)
		}
	}
	return "^" + strings.Join(segs, "/") + "$"
}
