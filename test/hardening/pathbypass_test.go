package hardening

import (
	"net/http"
	"testing"
)

// TestPathBypass: the forms of Istio's security best practices (path normalisation) that
// reach a "prefix: /api/" route's app with a path outside /api/ when the proxy routes on
// the path as received. With Istio's default normalisation (BASE: RFC 3986 dot segments
// removed, %2E decoded) each is routed on its normalised path, /admin/..., which the
// gateway has no route for: 404 NR, and the app never sees it.
//
// The normaliser is package internal/dataplane/pathnorm, called from the PATH
// NORMALISATION hook in forward.Serve. Until it is wired the proxy routes raw paths, and
// this test skips, saying so; it runs by itself once normalisation happens.
func TestPathBypass(t *testing.T) {
	m := theMesh(t)
	r := send(gwListen, []string{"GET /api/./probe-normalisation HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if m.app.saw("GET /api/./probe-normalisation") {
		t.Skip("path normalisation is not wired: the path normaliser (internal/dataplane/pathnorm) is not called " +
			"from forward.Serve's PATH NORMALISATION hook yet, so /api/./x reaches the app as sent")
	}
	if !m.app.saw("GET /api/probe-normalisation") {
		t.Fatalf("GET /api/./probe-normalisation: %d, and the app did not see /api/probe-normalisation", r.status)
	}
	for _, path := range []string{
		"/api/../admin/secret",
		"/api/%2e%2e/admin/secret",
		"/api/%2E%2E/admin/secret",
		"/api/.%2e/admin/secret",
		"/api/./../admin/secret",
		"/api/v1/../../admin/secret",
		"/api/../../admin/secret",
	} {
		t.Run(path, func(t *testing.T) {
			r := send(gwListen, []string{"GET " + path + " HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"}, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != http.StatusNotFound {
				t.Errorf("got %d %q, want 404 (no route for /admin/)", r.status, r.body)
			}
			for _, p := range []string{"GET " + path, "GET /admin/secret"} {
				if m.app.saw(p) {
					t.Errorf("%s reached the app", p)
				}
			}
			m.settled(t, path)
		})
	}
}
