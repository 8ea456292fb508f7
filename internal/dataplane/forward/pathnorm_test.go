package forward_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pathnorm"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// TestNormalizeRequest: each connection manager setting Istio's pathNormalization modes
// generate, on the paths a client would send to get around a route or a policy: the path
// the proxy routes and forwards, or Envoy's 400 / 307 with details path_normalization_failed.
func TestNormalizeRequest(t *testing.T) {
	base := &resource.HTTPManager{NormalizePath: true}
	merge := &resource.HTTPManager{NormalizePath: true, MergeSlashes: true}
	decode := &resource.HTTPManager{NormalizePath: true, MergeSlashes: true, EscapedSlashes: resource.EscapedSlashesUnescapeAndForward}
	reject := &resource.HTTPManager{NormalizePath: true, EscapedSlashes: resource.EscapedSlashesReject}
	redirect := &resource.HTTPManager{NormalizePath: true, EscapedSlashes: resource.EscapedSlashesUnescapeAndRedirect}
	for _, c := range []struct {
		name   string
		h      *resource.HTTPManager
		target string
		grpc   bool
		// want is the path routed and forwarded; status the local reply instead.
		want     string
		status   int
		location string
		why      string // part of the explanation
	}{
		{name: "none", h: &resource.HTTPManager{}, target: "/api/../admin", want: "/api/../admin"},
		{name: "dot-dot", h: base, target: "/api/../admin/secret", want: "/admin/secret"},
		{name: "escaped dots", h: base, target: "/api/%2e%2e/admin/secret?x=%2e%2e", want: "/admin/secret?x=%2e%2e"},
		{name: "backslash", h: base, target: `/api/..%5Cadmin`, want: `/api/..%5Cadmin`},
		{name: "dot segment with parameters", h: base, target: "/api/..;/admin", want: "/admin"},
		{name: "slashes kept by BASE", h: base, target: "/api//admin", want: "/api//admin"},
		{name: "slashes merged", h: merge, target: "/api//admin///x/", want: "/api/admin/x/"},
		{name: "escaped slash kept by BASE", h: base, target: "/api/%2F../admin", want: "/api/%2F../admin"},
		{name: "escaped slash decoded", h: decode, target: "/api%2F..%2Fadmin", want: "/admin"},
		{name: "NUL", h: base, target: "/api/%00/x", status: 400, why: "escaped NUL"},
		{name: "escaped slash rejected", h: reject, target: "/api%2Fadmin", status: 400, why: "REJECT_REQUEST"},
		{name: "escaped slash redirected", h: redirect, target: "/api%2fadmin?q=1", status: 307, location: "/api/admin?q=1", why: "UNESCAPE_AND_REDIRECT"},
		{name: "gRPC is not redirected", h: redirect, target: "/pkg.S%2FM", grpc: true, status: 400, why: "UNESCAPE_AND_REDIRECT"},
		{name: "already normal", h: merge, target: "/api/v1/items?id=7", want: "/api/v1/items?id=7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, c.target, nil)
			got, rp := forward.NormalizeRequest(r, forward.PathOptions(c.h), c.grpc)
			if c.status != 0 {
				if rp == nil {
					t.Fatalf("%s: routed as %q, want %d", c.target, got.URL.RequestURI(), c.status)
				}
				if rp.Status != c.status || rp.Details != pathnorm.Details || rp.Flag != 0 || rp.Location != c.location || !strings.Contains(rp.Explanation, c.why) {
					t.Errorf("%s: reply %d %q flag %v location %q explanation %q; want %d %q no flag location %q explanation with %q",
						c.target, rp.Status, rp.Details, rp.Flag, rp.Location, rp.Explanation, c.status, pathnorm.Details, c.location, c.why)
				}
				return
			}
			if rp != nil {
				t.Fatalf("%s: reply %d %q, want the path %q", c.target, rp.Status, rp.Explanation, c.want)
			}
			if p := got.URL.RequestURI(); p != c.want {
				t.Errorf("%s: routed and forwarded as %q, want %q", c.target, p, c.want)
			}
			if got != r && r.URL.RequestURI() != httptest.NewRequest(http.MethodGet, c.target, nil).URL.RequestURI() {
				t.Errorf("the server's request was modified: %q", r.URL.RequestURI())
			}
		})
	}
}

// FuzzNormalizeRequest: no request-target makes normalisation panic, a path it lets
// through parses as a request URI, and normalising it again changes nothing (a second
// proxy routes what the first one authorized).
func FuzzNormalizeRequest(f *testing.F) {
	for _, s := range []string{"/api/../admin", "/api/%2e%2e/admin", "/a//b/./c", "/%2F..%2Fx?q=%2e", "/..;/x", `/a\b`, "/%61%00", "/a?b#c"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, target string, mode uint8) {
		if !strings.HasPrefix(target, "/") {
			return // origin-form only: the others are not normalised
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n")))
		if err != nil {
			return
		}
		o := pathnorm.ForMode(pathnorm.Mode(mode % 4))
		got, rp := forward.NormalizeRequest(r, o, false)
		if rp != nil {
			return
		}
		if _, err := url.ParseRequestURI(got.URL.RequestURI()); err != nil {
			t.Fatalf("%q → %q, which does not parse: %v", target, got.URL.RequestURI(), err)
		}
		again, rp := forward.NormalizeRequest(got, o, false)
		if rp != nil || again.URL.RequestURI() != got.URL.RequestURI() {
			t.Fatalf("%q → %q, then → %q (%v)", target, got.URL.RequestURI(), again.URL.RequestURI(), rp)
		}
	})
}
