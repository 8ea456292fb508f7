package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/ads"
	"github.com/lucid-mesh/lucid/internal/controlplane/dashboard"
)

// startDashboard runs the dashboard's collection until ctx ends and serves it: on the
// debug port's mux, or on Options.DashboardAddr when that is another address. The tap
// relay for `lucid tap` and `lucid top` (/debug/tap) is on the debug port either way.
// stop shuts the dashboard's own server down.
func startDashboard(ctx context.Context, wg *sync.WaitGroup, o Options, debug *http.ServeMux, srv *ads.Server, analysis *analyzeState, log *slog.Logger) (stop func(), err error) {
	d := dashboard.New(dashboard.Options{Proxies: srv.SyncStatus, Log: log.With("component", "dashboard"),
		Findings: func() (any, error) { return analysis.messages() }})
	if o.DashboardAddr == "" || o.DashboardAddr == o.DebugAddr {
		d.Register(debug)
		wg.Go(func() { d.Run(ctx) })
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", o.DashboardAddr)
	if err != nil {
		return nil, fmt.Errorf("dashboard listener (--dashboard-addr): %w", err)
	}
	own := http.NewServeMux()
	d.Register(own)
	own.Handle("GET /{$}", http.RedirectHandler(dashboard.Path, http.StatusFound))
	d.RegisterRelay(debug)
	s := &http.Server{Handler: own, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	wg.Go(func() { d.Run(ctx) })
	log.Info("dashboard serving", "address", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(sctx)
	}, nil
}
