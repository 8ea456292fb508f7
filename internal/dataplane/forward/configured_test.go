package forward_test

import (
	"net/http"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// A route's response header operations (Istio's headers.response) apply to the replies the
// route makes itself, as Envoy finalises them: a content-type set there replaces
// text/plain, and the reply is still the route's (no x-lucid-error).
func TestConfiguredRepliesGetRouteResponseHeaders(t *testing.T) {
	ops := func(rt resource.Route) resource.Route {
		rt.ResponseHeadersToAdd = []resource.HeaderValueOption{
			{Key: "content-type", Value: "application/json"},
			{Key: "x-reply", Value: rt.Name},
		}
		return rt
	}
	rc := routes(
		ops(resource.Route{Name: "direct", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/direct"},
			DirectResponse: &resource.DirectResponse{Status: 503, Body: `{"down":true}`}}),
		ops(resource.Route{Name: "redirect", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/old"},
			Redirect: &resource.Redirect{Path: "/new", Code: 302}}),
		resource.Route{Name: "plain", Match: resource.RouteMatch{PathKind: resource.PathExact, Path: "/plain"},
			DirectResponse: &resource.DirectResponse{Status: 200, Body: "plain"}},
	)
	e := newEnv(t, rc)
	e.h1.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for _, tc := range []struct {
		path, name, contentType, body string
		code                          int
	}{
		{path: "/direct", name: "direct", code: 503, contentType: "application/json", body: `{"down":true}`},
		{path: "/old", name: "redirect", code: 302, contentType: "application/json"},
		{path: "/plain", code: 200, contentType: "text/plain", body: "plain"},
	} {
		got := e.get(tc.path)
		info := e.info()
		if got.code != tc.code || got.body != tc.body || info.ResponseCodeDetails != "direct_response" {
			t.Errorf("%s: %d %q (%s), want %d %q direct_response", tc.path, got.code, got.body, info.ResponseCodeDetails, tc.code, tc.body)
		}
		if ct := got.hdr.Get("Content-Type"); ct != tc.contentType {
			t.Errorf("%s: content-type %q, want %q", tc.path, ct, tc.contentType)
		}
		if x := got.hdr.Get("X-Reply"); x != tc.name {
			t.Errorf("%s: x-reply %q, want %q", tc.path, x, tc.name)
		}
		if got.hdr.Get("X-Lucid-Error") != "" {
			t.Errorf("%s: a configured reply carries x-lucid-error %q", tc.path, got.hdr.Get("X-Lucid-Error"))
		}
	}
	if got := e.get("/old"); got.hdr.Get("Location") != "http://svc:9080/new" {
		t.Errorf("redirect location %q", got.hdr.Get("Location"))
	}
	e.info()
}
