package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/accesslog"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/dataplane/tap"
)

// observers are what sees each finished request (requests) and each finished TCP
// connection (connections): metrics, the access log and the router's debug line.
type observers struct {
	requests    []func(*streaminfo.Info)
	connections []func(*streaminfo.Info) // istio_tcp_* are counted as bytes move, not here
	// accessLog writes a request's access-log lines as its listener's access logs (the
	// Telemetry API's accessLogging) say, falling back on --access-log.
	accessLog func(*streaminfo.Info, []resource.AccessLog, http.Header)
	// connectionAccessLog writes an opaque TCP connection's line as its tcp_proxy chain's
	// access logs say, falling back on --access-log.
	connectionAccessLog func(*streaminfo.Info, []resource.AccessLog)
	// metrics records a request's metrics with its listener's overrides.
	metrics func(*streaminfo.Info, *resource.StatsOverrides, http.Header)
}

// newObservers opens the access log (o.AccessLog) and returns the observers (metrics, the
// tap behind lucid tap/top and the dashboard, the router's debug line, the access log);
// call the returned func when the proxy has stopped.
func newObservers(o Options, st *stats.Stats, taps *tap.Hub, router *slog.Logger) (observers, func(), error) {
	obs := observers{requests: []func(*streaminfo.Info){taps.Observe, routeDebug(router)},
		connections: []func(*streaminfo.Info){taps.Observe}, metrics: st.RecordWith}
	f, err := accesslog.ParseFormat(o.AccessLogEncoding)
	if err != nil && o.AccessLog != "" {
		return obs, nil, fmt.Errorf("--access-log-encoding: %w", err)
	}
	var alog *accesslog.Logger
	closeW := func() {}
	if o.AccessLog != "" {
		var w io.Writer
		if w, closeW, err = accesslog.OpenFile(o.AccessLog); err != nil {
			return obs, nil, fmt.Errorf("--access-log: %w", err)
		}
		alog = accesslog.New(w, f)
	}
	rt := accesslog.NewRouter(alog, o.AccessLog, f, router)
	obs.accessLog, obs.connectionAccessLog = rt.Log, rt.LogConnection
	return obs, func() {
		rt.Close()
		if alog != nil {
			_ = alog.Close()
		}
		closeW()
	}, nil
}

// routeDebug is Envoy's router debug logging: with the "router" logger at debug
// (`lucid proxy-config log <workload> --level router:debug`), one line per request says
// which route and cluster the router chose for which URL, in Envoy's words ("cluster
// '…' match for URL '…'", "no route match for URL '…'", "unknown cluster '…'"), with the
// outcome. The line is written when the request ends. Disabled, it costs one atomic load.
func routeDebug(log *slog.Logger) func(*streaminfo.Info) {
	return func(i *streaminfo.Info) {
		if !log.Enabled(context.Background(), slog.LevelDebug) {
			return
		}
		var msg string
		switch {
		case i.ResponseCodeDetails == "route_not_found":
			msg = fmt.Sprintf("no route match for URL '%s'", i.Path)
		case i.ResponseCodeDetails == "cluster_not_found":
			msg = fmt.Sprintf("unknown cluster '%s'", i.UpstreamCluster)
		case i.ResponseCodeDetails == "direct_response":
			msg = fmt.Sprintf("direct response for URL '%s'", i.Path)
		case i.UpstreamCluster != "":
			msg = fmt.Sprintf("cluster '%s' match for URL '%s'", i.UpstreamCluster, i.Path)
		default:
			msg = fmt.Sprintf("request for URL '%s' not routed", i.Path)
		}
		attrs := []any{"direction", i.Direction, "method", i.Method, "authority", i.Authority, "route", i.RouteName,
			"upstream_host", i.UpstreamHost, "attempts", i.Attempts, "status", i.ResponseCode, "flags", i.Flags.String(),
			"details", i.ResponseCodeDetails, "request_id", i.RequestID}
		if i.LucidError != "" {
			attrs = append(attrs, "error", i.LucidError)
		}
		log.Debug(msg, attrs...)
	}
}
