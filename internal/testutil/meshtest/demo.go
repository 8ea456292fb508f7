package meshtest

import (
	"context"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lucid-mesh/lucid/internal/local/demoapp"
)

// startDemoApp runs workload w's app from its `lucid demo-app` command line as `lucid up`
// does, in this process: its calls go through w's sidecar unless the command line names
// another --proxy. It listens before returning, so the app answers once the mesh is up.
func (m *Mesh) startDemoApp(ctx context.Context, w Workload) {
	m.t.Helper()
	var cfg demoapp.Config
	f := pflag.NewFlagSet("demo-app", pflag.ContinueOnError)
	cfg.AddFlags(f)
	if err := f.Parse(w.DemoApp); err != nil {
		m.t.Fatalf("app %s: lucid demo-app %s: %v", w.Name, strings.Join(w.DemoApp, " "), err)
	}
	if !f.Changed("proxy") {
		cfg.Proxy = "http://" + net.JoinHostPort(w.IP, "15001") // lucid up's $LUCID_PROXY
	}
	app, err := demoapp.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		m.t.Fatalf("app %s: %v", w.Name, err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		m.t.Fatalf("app %s: %v", w.Name, err)
	}
	m.wg.Go(func() {
		if err := app.Serve(ctx, ln); err != nil && ctx.Err() == nil {
			m.t.Errorf("app %s: %v", w.Name, err)
		}
	})
}
