// Package admin is the sidecar's admin API (port 15000 by default): Envoy's endpoints
// with Envoy's paths, bodies and semantics, so istioctl-style tools and people used to
// Envoy read it the same way (/config_dump, /clusters, /logging, /stats, /ready, ...).
//
// It sits beside the data plane and reads it through Options: plain structs and funcs
// the sidecar fills from xdsclient, the cluster manager and the listeners, so this
// package imports none of them. Endpoints that change state require POST.
package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/tap"
)

// Options are the admin API's views of the sidecar. A nil func makes its endpoint
// answer 503 with "<what> unavailable".
type Options struct {
	// ConfigDump returns Envoy ConfigDump JSON; includeEDS adds the endpoints dump.
	ConfigDump func(includeEDS bool) ([]byte, error)
	// Clusters returns the runtime state of every active cluster.
	Clusters func() []ClusterStatus
	// Listeners returns every active listener.
	Listeners func() []ListenerStatus
	// Logging holds the component loggers /logging lists and changes.
	Logging *logging.Registry
	// Stats serves /stats and /stats/prometheus.
	Stats *stats.Stats
	// State is the server state: "LIVE", "DRAINING", "PRE_INITIALIZING" or "INITIALIZING".
	State func() string
	// ServerInfo describes the process for /server_info.
	ServerInfo func() ServerInfo
	// Quit is called by POST /quitquitquit after the "OK" reply is flushed. It must not
	// block (signal the owner, e.g. cancel a context); shutting down the admin server
	// from inside it would wait for this very request.
	Quit func()
	// Tap streams finished requests for /tap (tap.go); nil: 503.
	Tap *tap.Hub
	// Log receives the admin API's own records (level changes, bad requests); nil: none.
	Log *slog.Logger
	// Callers says who may use the API, by the caller's address (callers.go); every other
	// caller gets 403. nil allows anyone (the API is bound where only they reach it).
	Callers func(netip.Addr) bool
}

// ClusterStatus is one cluster as /clusters shows it.
type ClusterStatus struct {
	Name string
	// ObservabilityName is the name in stats (Envoy's alt_stat_name); "" means Name.
	ObservabilityName string
	// EDSServiceName is the EDS service name of an EDS cluster; "" for others.
	EDSServiceName string
	AddedViaAPI    bool
	// Circuit-breaker thresholds of the default priority.
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries uint64
	Hosts                                                       []HostStatus
}

// HostStatus is one endpoint of a cluster.
type HostStatus struct {
	Address  string // "ip:port"
	Hostname string
	// Stats holds cx_total, cx_active, cx_connect_fail, rq_total, rq_timeout, rq_success,
	// rq_error, rq_active (missing ones print as 0).
	Stats map[string]uint64
	// HealthFlags are Envoy's flag strings ("/failed_outlier_check", "/failed_eds_health",
	// ...); empty means healthy.
	HealthFlags []string
	// EDSHealth is the EDS health status name: "HEALTHY", "UNHEALTHY", "DRAINING",
	// "TIMEOUT", "DEGRADED" or "" (UNKNOWN).
	EDSHealth             string
	Weight                uint32
	Region, Zone, SubZone string
	Priority              uint32
	Labels                map[string]string // endpoint labels (not printed by /clusters; for later debug views)
	// Idle is what the cluster's HTTP/1.1 connection pool knows about the host's keep-alive
	// idle timeout; nil when the cluster has no HTTP/1.1 pool.
	Idle *IdleTimeout
}

// IdleTimeout is a host's keep-alive idle timeout as the connection pool knows it:
// /clusters prints "<host>::idle_timeout::<Description>" and "::idle_reuse_limit::", and
// the JSON form carries the gauges idle_timeout_ms and idle_reuse_limit_ms and the counter
// idle_timeout_closes.
type IdleTimeout struct {
	Timeout     time.Duration // learned or announced; 0 when unknown
	Description string        // "300ms (learned from 4 upstream closes)", "5s (Keep-Alive header)", "unknown"
	Closes      int           // idle closes observed
	// ReuseLimit is the idle time from which a request that cannot be replayed takes
	// another connection; negative when there is none.
	ReuseLimit time.Duration
}

// ListenerStatus is one active listener.
type ListenerStatus struct{ Name, Address string }

// ServerInfo describes the process for /server_info.
type ServerInfo struct {
	Version, State, NodeID, Cluster string
	Uptime                          time.Duration
	Metadata                        map[string]string
}

type endpoint struct {
	path    string
	help    string
	mutates bool // POST required
	handle  func(w http.ResponseWriter, r *http.Request)
}

type server struct {
	o         Options
	endpoints []endpoint
}

// New returns the admin API handler.
func New(o Options) http.Handler {
	s := &server{o: o}
	s.endpoints = []endpoint{
		{"/", "Admin home page", false, s.help},
		{"/clusters", "upstream cluster status", false, s.clusters},
		{"/config_dump", "dump current Envoy configs (experimental)", false, s.configDump},
		{"/help", "print out list of admin commands", false, s.help},
		{"/listeners", "print listener info", false, s.listeners},
		{"/logging", "query/change logging levels", false, s.logging},
		{"/memory", "print current allocation/heap usage", false, s.memory},
		{"/quitquitquit", "exit the server", true, s.quit},
		{"/ready", "print server state, return 200 if LIVE, otherwise return 503", false, s.ready},
		{"/server_info", "print server version/status information", false, s.serverInfo},
		{"/stats", "print server stats", false, s.stats},
		{"/stats/prometheus", "print server stats in prometheus format", false, s.prometheus},
		{"/tap", "stream requests as they finish, one JSON per line (lucid tap)", false, s.tapStream},
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.allowed(w, r) { // callers.go
		return
	}
	i := slices.IndexFunc(s.endpoints, func(e endpoint) bool { return e.path == r.URL.Path })
	if i < 0 {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "invalid path. ")
		s.writeHelp(w)
		return
	}
	e := s.endpoints[i]
	if e.mutates && r.Method != http.MethodPost {
		s.methodNotAllowed(w, r, e.path)
		return
	}
	e.handle(w, r)
}

// methodNotAllowed answers as Envoy does when a state-changing path is not POSTed.
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request, path string) {
	s.logf(slog.LevelError, fmt.Sprintf("admin path %q mutates state, method=%s rather than POST", path, r.Method))
	text(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %s not allowed, POST required.", r.Method))
}

func (s *server) logf(level slog.Level, msg string, args ...any) {
	if s.o.Log != nil {
		s.o.Log.Log(context.Background(), level, msg, args...)
	}
}

func (s *server) help(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	s.writeHelp(w)
}

func (s *server) writeHelp(w io.Writer) {
	var b strings.Builder
	b.WriteString("admin commands are:\n")
	for _, e := range s.endpoints {
		fmt.Fprintf(&b, "  %s: %s\n", e.path, e.help)
	}
	_, _ = io.WriteString(w, b.String())
}

// text writes a text/plain body with status code.
func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body) //nolint:gosec // G705: text/plain with nosniff, never rendered as HTML
}

func unavailable(w http.ResponseWriter, what string) {
	text(w, http.StatusServiceUnavailable, what+" unavailable\n")
}

// has reports whether the raw query has key (with or without a value), like Envoy's
// presence flags (?include_eds, ?usedonly).
func has(r *http.Request, key string) bool {
	_, ok := r.URL.Query()[key]
	return ok
}
