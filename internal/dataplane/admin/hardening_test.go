package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMemory(t *testing.T) {
	h := New(Options{})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/memory", nil))
	var m map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	for _, k := range []string{"allocated", "heap_size", "pageheap_unmapped", "pageheap_free", "total_thread_cache", "total_physical_bytes", "goroutines", "stacks"} {
		if _, err := strconv.ParseUint(m[k], 10, 64); err != nil {
			t.Errorf("%s = %q, want a number", k, m[k])
		}
	}
	if n, _ := strconv.Atoi(m["goroutines"]); n < 1 {
		t.Errorf("goroutines %q", m["goroutines"])
	}
	if a, _ := strconv.Atoi(m["allocated"]); a <= 0 {
		t.Errorf("allocated %q", m["allocated"])
	}
	if st, _ := strconv.Atoi(m["stacks"]); st < 2048 { // at least this goroutine's stack
		t.Errorf("stacks %q", m["stacks"])
	}
}

func TestServerGauges(t *testing.T) {
	got := map[string]uint64{}
	ServerGauges(time.Now().Add(-3*time.Second), func() string { return "DRAINING" }, func() uint64 { return 7 })(
		func(n string, v uint64) { got[n] = v })
	if got["server.uptime"] < 3 || got["server.state"] != 1 || got["server.live"] != 0 || got["server.total_connections"] != 7 ||
		got["server.memory_allocated"] == 0 || got["server.goroutines"] == 0 || got["server.concurrency"] == 0 {
		t.Fatalf("gauges %v", got)
	}
}

func TestCallers(t *testing.T) {
	own := netip.MustParseAddr("127.0.213.2")
	h := New(Options{Callers: LocalCallers(own, netip.Addr{})})
	for _, c := range []struct {
		from string
		want int
	}{
		{"127.0.0.1:5000", 200}, {"[::1]:5000", 200}, {"127.0.213.2:5000", 200},
		{"127.0.213.3:5000", 403}, {"10.1.2.3:5000", 403}, {"127.0.0.2:5000", 403},
	} {
		for _, path := range []string{"/ready", "/quitquitquit", "/logging?level=trace"} {
			r := httptest.NewRequest(http.MethodPost, path, nil)
			r.RemoteAddr = c.from
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			refused := w.Code == http.StatusForbidden
			if refused != (c.want == 403) {
				t.Errorf("POST %s from %s: %d %q", path, c.from, w.Code, strings.TrimSpace(w.Body.String()))
			}
		}
	}
}
