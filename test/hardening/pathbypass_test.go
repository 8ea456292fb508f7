package hardening

import (
	"net/http"
	"strings"
	"testing"
)

// TestPathBypass: the forms of Istio's security best practices (path normalisation) that
// reach a "prefix: /api/" route's app with a path outside /api/ when the proxy routes on
// the path as received. With Istio's default normalisation (BASE: RFC 3986 dot segments
// removed, %2E decoded) each is routed on its normalised path, /admin/..., which the
// gateway has no route for: 404 NR, and the app never sees it.
//
// The normaliser is package internal/dataplane/pathnorm, called at request entry in
// forward.Serve (forward/pathnorm.go). A path Envoy refuses (an escaped NUL) gets 400
// with details path_normalization_failed and an x-lucid-error saying why.
func TestPathBypass(t *testing.T) {
	m := theMesh(t)
	r := send(gwListen, []string{"GET /api/./probe-normalisation HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if m.app.saw("GET /api/./probe-normalisation") {
		t.Fatal("GET /api/./probe-normalisation reached the app as sent: the gateway does not normalise paths")
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

// TestPathRejected: a path with an escaped NUL is refused at the gateway with Envoy's 400
// (details path_normalization_failed in the access log) and never reaches the app.
func TestPathRejected(t *testing.T) {
	m := theMesh(t)
	r := send(gwListen, []string{"GET /api/%00/secret HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.status != http.StatusBadRequest || !strings.Contains(r.header.Get("X-Lucid-Error"), "escaped NUL") {
		t.Errorf("got %d %q x-lucid-error %q; want 400 explaining the escaped NUL", r.status, r.body, r.header.Get("X-Lucid-Error"))
	}
	if m.app.saw("GET /api/%00/secret") {
		t.Error("the path reached the app")
	}
	m.settled(t, "/api/%00/secret")
}
