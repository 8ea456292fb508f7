package forward_test

import (
	"net/http"
	"testing"
)

// An upgrade whose upstream refuses the connection gets the connect failure's local reply
// with its explanation, as a request through the retry loop does.
func TestUpgradeConnectFailureExplained(t *testing.T) {
	refused := refusedAddr(t)
	e := newEnv(t, routes(toCluster("c")), static("c", refused))
	req, _ := http.NewRequest(http.MethodGet, e.url+"/chat", nil)
	req.Host = "svc:9080"
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	got := e.do(e.h1, req)
	want := "UF: connect to " + refused + " for cluster c failed: dial tcp " + refused + ": connect: connection refused"
	if got.code != http.StatusServiceUnavailable || got.hdr.Get("X-Lucid-Error") != want {
		t.Fatalf("got %d, x-lucid-error %q; want 503, %q", got.code, got.hdr.Get("X-Lucid-Error"), want)
	}
	if i := e.info(); i.LucidError != want || i.ResponseCodeDetails != "upstream_reset_before_response_started{remote_connection_failure}" {
		t.Fatalf("record: %q, details %q", i.LucidError, i.ResponseCodeDetails)
	}
}
