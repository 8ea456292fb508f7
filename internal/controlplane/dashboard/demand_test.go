package dashboard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// A control plane with many proxies must not read them when nobody looks at the dashboard:
// no scrape and no open tap before the first view, both while it is viewed, none again
// once the viewer has been gone for Idle.
func TestCollectsOnlyWhileWatched(t *testing.T) {
	var scrapes, tapsOpen atomic.Int32
	admin := http.NewServeMux()
	admin.HandleFunc("/stats/prometheus", func(w http.ResponseWriter, _ *http.Request) {
		scrapes.Add(1)
		_, _ = w.Write([]byte(exposition(1, 0, 1, [3]float64{1, 1, 1})))
	})
	admin.HandleFunc("/tap", func(w http.ResponseWriter, r *http.Request) {
		tapsOpen.Add(1)
		defer tapsOpen.Add(-1)
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxySrv := httptest.NewUnstartedServer(admin)
	proxySrv.Listener = ln
	proxySrv.Start()
	defer proxySrv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	d := New(Options{
		Proxies: func() []contract.ProxyStatus {
			return []contract.ProxyStatus{{ID: "sidecar~127.0.0.1~productpage.default~default.svc.cluster.local", Connected: true}}
		},
		AdminPort: port, StatusPort: port, Interval: 10 * time.Millisecond, Idle: 300 * time.Millisecond,
	})
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); d.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	time.Sleep(200 * time.Millisecond)
	if n, open := scrapes.Load(), tapsOpen.Load(); n != 0 || open != 0 {
		t.Fatalf("before anyone looked: %d scrapes, %d taps open; want none", n, open)
	}

	resp, err := http.Get(srv.URL + "/dashboard/api/graph")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	testutil.EventuallyWhy(t, 2*time.Second, "the proxy is read while the dashboard is viewed", func() (bool, string) {
		n, open := scrapes.Load(), tapsOpen.Load()
		return n >= 2 && open == 1, fmt.Sprintf("%d scrapes, %d taps open", n, open)
	})
	testutil.EventuallyWhy(t, 3*time.Second, "the tap is closed once the viewer left", func() (bool, string) {
		open := tapsOpen.Load()
		return open == 0, fmt.Sprintf("%d taps open", open)
	})
	before := scrapes.Load()
	time.Sleep(200 * time.Millisecond)
	if n := scrapes.Load(); n != before {
		t.Errorf("after the viewer left: %d more scrapes; want none", n-before)
	}
}
