// Package status is the agent's status server (port 15020 on the workload's address),
// Istio's pilot-agent status server: the readiness the kubelet (or `lucid up`) asks for,
// the app probes the injector rewrote to it, the merged Prometheus scrape, and the
// localhost-only controls (/quitquitquit, /drain, pprof). It sits beside the proxy,
// reading the xDS client's sync state and the proxy's listener state; it never touches
// mesh requests.
//
// Readiness is composed as Istio's is: config received and accepted (CDS and LDS), then
// listeners bound, then not draining. Only transitions are logged.
package status

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Probe reports why the sidecar is not ready, or nil when it is.
type Probe func() error

// Options configure a Server. Only Ready is required.
type Options struct {
	Ready Probe
	Log   *slog.Logger
	// AppProbes serves /app-health/... and /app-lifecycle/... (an appprobe.Set); nil
	// answers every such path 400, as for an unconfigured path.
	AppProbes http.Handler
	// Metrics is the sidecar's own registry, the first part of /stats/prometheus.
	Metrics prometheus.Gatherer
	// AppMetrics, when set, is scraped and appended (ISTIO_PROMETHEUS_ANNOTATIONS).
	AppMetrics *AppScrape
	// Registerer receives the scrape counters (nil: not registered).
	Registerer prometheus.Registerer
	// Quit is /quitquitquit (exit now); Drain is /drain (drain inbound, do not exit).
	Quit, Drain func()
	// Profiling serves /debug/pprof/ (localhost only).
	Profiling bool
	// StartGrace is how long after NewServer "not ready" is expected (the configuration is
	// on its way) and logged at debug; the first check after it that is still not ready
	// warns. Zero warns from the start.
	StartGrace time.Duration
	// Callers decides who is "localhost" for /quitquitquit, /drain and pprof: in local
	// mode every workload shares loopback, so only the operator's address and the
	// workload's own are. nil: any loopback address (Istio's rule).
	Callers func(netip.Addr) bool
}

// Server is the status server's handler set.
type Server struct {
	o   Options
	log *slog.Logger
	mx  *merger

	started time.Time

	mu      sync.Mutex
	lastErr string // "" when the last check succeeded; "-" before the first check
	quiet   bool   // lastErr was logged at debug, within StartGrace
}

// New returns a status server using ready as its readiness probe and nothing else.
func New(ready Probe, log *slog.Logger) *Server {
	s, _ := NewServer(Options{Ready: ready, Log: log})
	return s
}

// NewServer returns a status server.
func NewServer(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	mx, err := newMerger(o.Metrics, o.AppMetrics, o.Registerer, o.Log)
	if err != nil {
		return nil, err
	}
	return &Server{o: o, log: o.Log, mx: mx, lastErr: "-", started: time.Now()}, nil
}

// Handler returns the status server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz/ready", s.handleReady)
	probes := s.o.AppProbes
	if probes == nil {
		probes = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "app prober config does not exists for "+r.URL.Path, http.StatusBadRequest)
		})
	}
	mux.Handle("/app-health/", probes)
	mux.Handle("/app-lifecycle/", probes)
	mux.Handle("/stats/prometheus", s.mx)
	mux.Handle("/metrics", s.mx)
	localOnly, localPost := s.localOnly, s.localPost
	mux.Handle("/quitquitquit", localPost(s.control("/quitquitquit", s.o.Quit)))
	mux.Handle("/drain", localPost(s.control("/drain", s.o.Drain)))
	if s.o.Profiling {
		mux.Handle("/debug/pprof/", localOnly(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", localOnly(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", localOnly(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", localOnly(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", localOnly(http.HandlerFunc(pprof.Trace)))
	}
	return mux
}

func (s *Server) control(path string, f func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if f == nil {
			http.Error(w, path+" is not available", http.StatusNotImplemented)
			return
		}
		s.log.Info("handling "+path, "path", path)
		_, _ = fmt.Fprint(w, "OK")
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		f()
	})
}

// localOnly answers 403 to callers not on a loopback address, as Istio's agent does (or,
// with Options.Callers, not among the callers it admits).
func (s *Server) localOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLocalhost(r, s.o.Callers) {
			http.Error(w, "Only requests from localhost are allowed", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// localPost is localOnly and POST only.
func (s *Server) localPost(h http.Handler) http.Handler {
	return s.localOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

func fromLocalhost(r *http.Request, callers func(netip.Addr) bool) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if callers != nil {
		return callers(ip.Unmap())
	}
	return ip.Unmap().IsLoopback()
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	err := s.o.Ready()
	s.logTransition(err)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) logTransition(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	starting := err != nil && time.Since(s.started) < s.o.StartGrace
	s.mu.Lock()
	// A reason first seen while starting is logged again, as a warning, once the grace is over.
	changed := msg != s.lastErr || (s.quiet && !starting)
	s.lastErr, s.quiet = msg, starting
	s.mu.Unlock()
	switch {
	case !changed:
	case err == nil:
		s.log.Info("proxy is ready")
	case starting:
		s.log.Debug("proxy is not ready yet (starting)", "reason", msg)
	default:
		s.log.Warn("proxy is not ready", "reason", msg)
	}
}
