// Package appprobe runs the workload's original Kubernetes probes on the kubelet's
// behalf. Istio's injector rewrites a pod's httpGet, tcpSocket and grpc probes to the
// status server (:15020/app-health/<container>/{livez,readyz,startupz}) and passes the
// originals in ISTIO_KUBE_APP_PROBERS; the status server hands those paths to a Set.
//
//	kubelet ─► status server :15020 ─► appprobe.Set ─► app (from 127.0.0.6, a fresh connection)
//
// A probe behaves as the kubelet's own (k8s.io/kubernetes/pkg/probe/{http,tcp,grpc}), so
// the kubelet sees success exactly when it would probing the app itself. Unlike Istio's
// agent, which answers a bare 500 for every transport error, a failure explains itself:
// 502 for refused/reset/closed/TLS, 504 for a timeout, the app's own status unchanged; the
// cause in the body and in x-lucid-probe-error, a warning log per state change and the
// metric lucid_app_probe_total{container,probe,result,reason}.
package appprobe

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrorHeader carries the cause of a failed probe.
const ErrorHeader = "x-lucid-probe-error"

// Options configure a Set.
type Options struct {
	Config Config
	// Target is where the probes go: the pod's IP (here, the workload's app address), or
	// "localhost" (Istio's REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION).
	Target string
	// StatusPort is the status server's port: a kubelet Host header carrying it is
	// rewritten to the probe's port.
	StatusPort uint16
	// SourceV4 and SourceV6 are the probe connections' source addresses (DefaultSourceV4,
	// DefaultSourceV6 when zero; set NoSource to let the kernel choose).
	SourceV4, SourceV6 netip.Addr
	NoSource           bool
	Logger             *slog.Logger
	// Registerer receives lucid_app_probe_total (nil: not registered).
	Registerer prometheus.Registerer
	// OnFailure, if set, is called when a probe starts failing or fails for a new reason
	// (the transitions that are logged), outside any lock. It must not block: the agent
	// forwards it to the control plane, which records an Event on the pod.
	OnFailure func(Failure)
}

// Failure is one probe failure transition, as logged.
type Failure struct {
	Container string // the app container
	Probe     string // livez, readyz, startupz, prestopz, poststartz
	Target    string // what was probed ("GET http://...", "tcp host:port", ...)
	Reason    string // the failure class (the metric's reason label)
	Cause     string // the explanation
	Failures  int    // consecutive failures so far
}

// Set serves the configured probe paths.
type Set struct {
	probes  map[string]*entry
	log     *slog.Logger
	total   *prometheus.CounterVec
	tcpDial *dialer
	// statusPort is the status server's port (for the Host rewrite).
	statusPort uint16
	onFailure  func(Failure)
}

// entry is one configured path.
type entry struct {
	path, container, probe string
	p                      *Prober
	timeout                time.Duration
	target                 string // host:port
	url                    string // HTTP probes
	client                 *http.Client

	mu       sync.Mutex // guards the state below
	failing  bool
	reason   string
	failures int // consecutive failures
}

// New returns a Set for o.Config.
func New(o Options) (*Set, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Target == "" {
		o.Target = "localhost"
	}
	d := &dialer{}
	if !o.NoSource {
		d.source4, d.source6 = orAddr(o.SourceV4, DefaultSourceV4), orAddr(o.SourceV6, DefaultSourceV6)
	}
	s := &Set{
		probes:     map[string]*entry{},
		log:        o.Logger,
		tcpDial:    d,
		statusPort: o.StatusPort,
		onFailure:  o.OnFailure,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lucid_app_probe_total",
			Help: "App probes run on the kubelet's behalf, by container, probe, result (success, failure) and reason.",
		}, []string{"container", "probe", "result", "reason"}),
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.total); err != nil {
			return nil, fmt.Errorf("register lucid_app_probe_total: %w", err)
		}
	}
	for path, p := range o.Config {
		c, probe := Split(path)
		e := &entry{path: path, container: c, probe: probe, p: p, timeout: time.Duration(p.TimeoutSeconds) * time.Second,
			target: net.JoinHostPort(o.Target, strconv.Itoa(p.port()))}
		if p.HTTPGet != nil {
			e.url, e.client = newHTTP(e, d)
		}
		s.probes[path] = e
	}
	return s, nil
}

func orAddr(a, def netip.Addr) netip.Addr {
	if a.IsValid() {
		return a
	}
	return def
}

// Paths lists the configured paths.
func (s *Set) Paths() []string {
	out := make([]string, 0, len(s.probes))
	for p := range s.probes {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ServeHTTP runs the probe configured for r's path.
func (s *Set) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e := s.probes[r.URL.Path]
	if e == nil {
		s.log.Warn("app prober config does not exist", "path", r.URL.Path)
		http.Error(w, "app prober config does not exists for "+r.URL.Path, http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	tr := &trace{}
	ctx = withTrace(ctx, tr)
	var v verdict
	var target string
	switch {
	case e.p.HTTPGet != nil:
		v, target = s.probeHTTP(ctx, r, e, tr)
	case e.p.TCPSocket != nil:
		v, target = s.probeTCP(ctx, e, tr), "tcp "+e.target
	default:
		v, target = s.probeGRPC(ctx, r, e, tr), grpcTarget(e)
	}
	s.record(e, v, target, tr)
	if v.ok() {
		w.WriteHeader(v.status)
		_, _ = w.Write(v.body)
		return
	}
	msg := fmt.Sprintf("%s for container %s: %s: %s", e.probe, e.container, target, v.cause)
	w.Header().Set(ErrorHeader, msg)
	if v.reason == ReasonStatus {
		// The app's own answer, unchanged; the cause is in the header.
		w.WriteHeader(v.status)
		_, _ = w.Write(v.body)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(v.status)
	_, _ = fmt.Fprintln(w, msg)
}

// record counts the result and logs state changes: the first failure, a change of
// cause, and the recovery (with the number of failures in a row).
func (s *Set) record(e *entry, v verdict, target string, tr *trace) {
	result := "success"
	if !v.ok() {
		result = "failure"
	}
	s.total.WithLabelValues(e.container, e.probe, result, v.reason).Inc()
	var failed *Failure // reported after the unlock
	defer func() {
		if failed != nil && s.onFailure != nil {
			s.onFailure(*failed)
		}
	}()
	e.mu.Lock()
	defer e.mu.Unlock()
	if v.ok() {
		if e.failing {
			s.log.Info("app probe succeeds again", "container", e.container, "probe", e.probe, "target", target, "failures", e.failures)
		}
		e.failing, e.reason, e.failures = false, "", 0
		return
	}
	e.failures++
	if e.failing && e.reason == v.reason {
		return
	}
	e.failing, e.reason = true, v.reason
	attrs := []any{"container", e.container, "probe", e.probe, "target", target, "reason", v.reason, "cause", v.cause, "failures", e.failures}
	if p := tr.noteText.Load(); p != nil {
		attrs = append(attrs, "note", *p)
	}
	s.log.Warn("app probe failed", attrs...)
	failed = &Failure{Container: e.container, Probe: e.probe, Target: target, Reason: v.reason, Cause: v.cause, Failures: e.failures}
}
