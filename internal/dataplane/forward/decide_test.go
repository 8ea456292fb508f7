package forward_test

import (
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// The decision step (Decide, Target, PickHost) is what Serve executes: for each of the
// router's own answers, the reply the decision describes is the response a live request
// gets (status, body, flag and x-lucid-error, Location). `lucid why` renders these values.
func TestDecisionIsWhatServeSends(t *testing.T) {
	prefix := func(name, p string) resource.Route {
		return resource.Route{Name: name, Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: p, CaseSensitive: true}}
	}
	redirect := prefix("moved", "/moved")
	redirect.Redirect = &resource.Redirect{Path: "/new", Code: http.StatusFound}
	direct := prefix("direct", "/direct")
	direct.DirectResponse = &resource.DirectResponse{Status: http.StatusTeapot, Body: "short and stout"}
	noAction := prefix("void", "/void")
	missing := prefix("missing", "/missing")
	missing.Action = &resource.RouteAction{Cluster: "outbound|9080|v9|reviews.default.svc.cluster.local", ClusterNotFoundCode: http.StatusNotFound}
	empty := prefix("empty", "/empty")
	empty.Action = &resource.RouteAction{Cluster: "empty"}
	rc := &resource.RouteConfig{Name: "9080", VirtualHosts: []resource.VirtualHost{{
		Name: "svc:9080", Domains: []string{"svc:9080"}, Routes: []resource.Route{redirect, direct, noAction, missing, empty}}}}
	e := newEnv(t, rc, static("empty"))
	unarrived := newEnv(t, nil)

	for _, tc := range []struct {
		name, host, path string
		env              *env
		status           int
	}{
		{"route configuration not arrived", "svc:9080", "/", unarrived, 404},
		{"no virtual host", "other:9080", "/", e, 404},
		{"no route", "svc:9080", "/elsewhere", e, 404},
		{"redirect", "svc:9080", "/moved?q=1", e, 302},
		{"direct response", "svc:9080", "/direct", e, 418},
		{"route without action", "svc:9080", "/void", e, 404},
		{"cluster not found", "svc:9080", "/missing", e, 404},
		{"no healthy upstream", "svc:9080", "/empty", e, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tc.env.url+tc.path, nil)
			req.Host = tc.host
			c := &http.Client{Transport: tc.env.h1.Transport, // a redirect is the answer, not followed
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			got := tc.env.do(c, req)
			info := tc.env.info()

			in := &forward.Inbound{Routes: tc.env.routes, RouteConfigName: tc.env.routeName}
			d := forward.Decide(in, req)
			rp := d.Reply
			if rp == nil {
				name, _ := route.PickCluster(d.Route.Action, rand.Uint64N)
				cl, nc := forward.Target(tc.env.cm, d.Route.Action, name)
				if rp = nc; rp == nil {
					_, rp = forward.PickHost(cl, req, "")
				}
			}
			if rp == nil {
				t.Fatalf("the decision forwards; the request got %d", got.code)
			}
			if got.code != tc.status || rp.Status != got.code || rp.Body != got.body ||
				rp.LucidError() != got.hdr.Get("X-Lucid-Error") || rp.Location != got.hdr.Get("Location") {
				t.Fatalf("decision %+v (x-lucid-error %q)\nlive %d %q x-lucid-error %q location %q",
					rp, rp.LucidError(), got.code, got.body, got.hdr.Get("X-Lucid-Error"), got.hdr.Get("Location"))
			}
			if info.Flags != rp.Flag || info.ResponseCodeDetails != rp.Details || info.LucidError != rp.LucidError() ||
				info.ResponseCode != rp.Status {
				t.Fatalf("access-log record %+v, decision %+v", info, rp)
			}
		})
	}
}
