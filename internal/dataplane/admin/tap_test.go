package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/dataplane/tap"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func tapRequest(path string, code int, flags streaminfo.Flag) *streaminfo.Info {
	return &streaminfo.Info{Start: time.Now(), Method: "GET", Path: path, ResponseCode: code, Flags: flags,
		Direction: "outbound", Authority: "reviews:9080", DestinationService: "reviews.default.svc.cluster.local"}
}

// waitListeners waits until the hub has n listeners (the stream opened or closed).
func waitListeners(t *testing.T, h *tap.Hub, n int) {
	t.Helper()
	testutil.EventuallyWhy(t, 5*time.Second, fmt.Sprintf("%d tap listeners", n), func() (bool, string) {
		got := h.Listeners()
		return got == n, fmt.Sprintf("%d now", got)
	})
}

func TestTapStreamsFilteredRequests(t *testing.T) {
	hub := tap.New("productpage.default")
	srv := httptest.NewServer(New(Options{Tap: hub}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/tap?path=/v3&flags=UH", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("GET /tap: %d %s", resp.StatusCode, ct)
	}
	waitListeners(t, hub, 1)
	hub.Observe(tapRequest("/reviews", 200, 0))
	hub.Observe(tapRequest("/v3/x", 503, streaminfo.NoHealthyUpstream))
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatalf("no event: %v", sc.Err())
	}
	var ev contract.TapEvent
	if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
		t.Fatalf("%q: %v", sc.Text(), err)
	}
	if ev.Path != "/v3/x" || ev.Status != 503 || ev.Flags != "UH" || ev.Proxy != "productpage.default" {
		t.Errorf("event = %+v, want the /v3 request only", ev)
	}

	// The client goes away: the proxy drops its listener.
	cancel()
	waitListeners(t, hub, 0)
}

func TestTapEndsWhenTheProxyStops(t *testing.T) {
	hub := tap.New("p.default")
	srv := httptest.NewServer(New(Options{Tap: hub}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/tap")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitListeners(t, hub, 1)
	hub.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
}

func TestTapBadFilter(t *testing.T) {
	srv := httptest.NewServer(New(Options{Tap: tap.New("p.default")}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/tap?status=9xx")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), `tap: status "9xx"`) {
		t.Errorf("GET /tap?status=9xx: %d %q, want 400 naming the status filter", resp.StatusCode, b)
	}
}
