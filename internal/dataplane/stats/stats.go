// Package stats keeps the sidecar's metrics: Istio's standard request metrics
// (istio_requests_total, istio_request_duration_milliseconds, istio_request_bytes,
// istio_response_bytes, with Istio's labels), Istio's TCP metrics (istio_tcp_*, tcp.go) and Envoy-style counters and gauges
// (cluster.<name>.upstream_cx_total, ...) read from the components that own them.
//
// It sits at the end of the request path beside the access log: forward hands each
// finished streaminfo.Info to Record. The admin API serves it as /stats (Envoy's plain
// and JSON formats) and /stats/prometheus. It keeps its own prometheus.Registry, never
// the global one.
package stats

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Buckets are Envoy's default histogram buckets, which Istio's metrics use for durations
// (ms) and sizes (bytes) alike.
var Buckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
	60000, 300000, 600000, 1800000, 3600000}

// LabelNames are the labels of Istio's standard HTTP metrics, in Istio's order.
var LabelNames = contract.IstioLabels

const numLabels = 25

// labelKey is one combination of label values, in LabelNames order.
type labelKey [numLabels]string

// cloned is a copy of k whose values share no memory with what they were taken from: a
// series lives as long as the sidecar, and a value cut from a request's head would keep
// the head's block of bytes (strslab) alive with it.
func (k *labelKey) cloned() *labelKey {
	var c labelKey
	for i, v := range k {
		c[i] = strings.Clone(v)
	}
	return &c
}

// children are the metric children for one labelKey.
type children struct {
	requests  prometheus.Counter
	duration  prometheus.Observer
	reqBytes  prometheus.Observer
	respBytes prometheus.Observer
}

// CounterSource reports current values: it calls emit once per stat with the full
// Envoy stat name (e.g. "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total").
// It is called on every read of the stats, from any goroutine.
type CounterSource func(emit func(name string, value uint64))

// Stats holds the metrics of one sidecar. It is safe for concurrent use.
type Stats struct {
	self streaminfo.Peer
	reg  *prometheus.Registry

	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	reqBytes  *prometheus.HistogramVec
	respBytes *prometheus.HistogramVec
	// registered are the four, in httpMetricNames order (overrides.go).
	registered [4]prometheus.Collector

	mu    sync.RWMutex // guards cache
	cache map[labelKey]*cached
	// last is the entry the previous request used: a sidecar's requests mostly repeat
	// one label set, and comparing it is cheaper than hashing 25 labels for the map.
	last atomic.Pointer[cached]

	srcMu    sync.Mutex // guards counters and gauges
	counters []CounterSource
	gauges   []CounterSource

	envoy *envoyCollector
	tcpm  tcpMetrics // tcp.go: istio_tcp_*

	// overrides.go: series recorded under the Telemetry API's overrides
	ov overrideCache
}

// New returns the stats of the sidecar whose workload is self: self is the source of
// outbound requests and the destination of inbound ones.
func New(self streaminfo.Peer) *Stats {
	s := &Stats{self: self, reg: prometheus.NewRegistry(), cache: make(map[labelKey]*cached)}
	for i := range httpMetricNames {
		s.registered[i] = newVec(i, LabelNames)
	}
	s.requests = s.registered[0].(*prometheus.CounterVec)
	s.duration = s.registered[1].(*prometheus.HistogramVec)
	s.reqBytes = s.registered[2].(*prometheus.HistogramVec)
	s.respBytes = s.registered[3].(*prometheus.HistogramVec)
	s.envoy = &envoyCollector{s: s, descs: make(map[descKey]*prometheus.Desc)}
	s.reg.MustRegister(s.requests, s.duration, s.reqBytes, s.respBytes, s.envoy, &s.ov)
	return s
}

// newVec is standard HTTP metric i (httpMetricNames order) with labels names: every
// label for the registered vectors, fewer for a Telemetry override that removes some.
func newVec(i int, names []string) prometheus.Collector {
	switch i {
	case 0:
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests handled by this proxy.",
		}, names)
	case 1:
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Request duration in milliseconds.",
			Buckets: Buckets,
		}, names)
	case 2:
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_bytes",
			Help:    "Request body sizes in bytes.",
			Buckets: Buckets,
		}, names)
	}
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "istio_response_bytes",
		Help:    "Response body sizes in bytes.",
		Buckets: Buckets,
	}, names)
}

// Record counts one finished request. Repeated label combinations reuse cached metric
// children, so the common case takes a read lock and no allocation for the lookup.
func (s *Stats) Record(info *streaminfo.Info) {
	var k labelKey
	s.fill(&k, info)
	c := s.child(&k)
	c.requests.Inc()
	c.duration.Observe(float64(info.Duration.Milliseconds()))
	c.reqBytes.Observe(float64(info.BytesReceived))
	c.respBytes.Observe(float64(info.BytesSent))
}

// cached is a label set and its metric children, made once per label set.
type cached struct {
	key labelKey
	c   children
	// seen are the values of the request that made the entry, as they were (key holds
	// copies): most values come from the configuration or are constants, so the next
	// requests of the same label set carry the very same strings, and comparing where
	// they are (samePlace) spares comparing their bytes. A string is never changed, so the
	// same place and length is the same value. seen keeps what it points to alive: for a
	// value cut from an answer's head (a grpc-status other than the codes grpcStatus
	// knows), that head's shared block (strslab), once per label set.
	seen labelKey
}

// samePlace says whether every value of a is the string of b's at the same index, the
// same bytes in the same place.
func samePlace(a, b *labelKey) bool {
	for i := range a {
		//nolint:gosec // the addresses are compared, not used
		if len(a[i]) != len(b[i]) || len(a[i]) > 0 && unsafe.StringData(a[i]) != unsafe.StringData(b[i]) {
			return false
		}
	}
	return true
}

func (s *Stats) child(k *labelKey) *children {
	if e := s.last.Load(); e != nil && (samePlace(&e.seen, k) || e.key == *k) {
		return &e.c
	}
	s.mu.RLock()
	e, ok := s.cache[*k]
	s.mu.RUnlock()
	if !ok {
		e = s.newChild(k)
	}
	s.last.Store(e)
	return &e.c
}

func (s *Stats) newChild(k *labelKey) *cached {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cache[*k]; ok {
		return e
	}
	seen := *k
	k = k.cloned()
	e := &cached{key: *k, seen: seen, c: children{
		requests:  s.requests.WithLabelValues(k[:]...),
		duration:  s.duration.WithLabelValues(k[:]...),
		reqBytes:  s.reqBytes.WithLabelValues(k[:]...),
		respBytes: s.respBytes.WithLabelValues(k[:]...),
	}}
	s.cache[*k] = e
	return e
}

// fill computes Istio's label values for info. Outbound requests are reported by the
// source (this sidecar is the source); inbound by the destination.
// connection_security_policy is Istio's: the destination says mutual_tls when the
// downstream connection was mutual TLS, none otherwise; the source always says unknown.
func (s *Stats) fill(k *labelKey, in *streaminfo.Info) {
	src, dst := in.Source, in.Destination
	reporter, security := "destination", "none"
	if in.MTLS {
		security = "mutual_tls"
	}
	if in.Direction == "outbound" {
		reporter, security = "source", "unknown"
		src = merge(s.self, src)
	} else {
		dst = merge(s.self, dst)
	}
	k[0] = reporter
	putPeer(k[1:9], src)
	k[9] = orUnknown(dst.Workload)
	k[10] = orUnknown(dst.Namespace)
	k[11] = orUnknown(dst.Principal)
	k[12] = orUnknown(dst.App)
	k[13] = orUnknown(dst.Version)
	k[14] = orUnknown(in.DestinationService)
	k[15] = canonicalService(dst)
	k[16] = canonicalRevision(dst)
	k[17] = orUnknown(in.DestinationServiceName)
	k[18] = orUnknown(in.DestinationServiceNamespace)
	k[19] = orUnknown(dst.Cluster)
	k[20] = "http"
	if in.GRPCStatus != "" {
		k[20] = "grpc"
	}
	k[21] = responseCode(in.ResponseCode)
	k[22] = grpcStatus(in.GRPCStatus)
	k[23] = in.Flags.String()
	k[24] = security
}

// putPeer fills the eight source_* labels in LabelNames order.
func putPeer(dst []string, p streaminfo.Peer) {
	dst[0] = orUnknown(p.Workload)
	dst[1] = canonicalService(p)
	dst[2] = canonicalRevision(p)
	dst[3] = orUnknown(p.Namespace)
	dst[4] = orUnknown(p.Principal)
	dst[5] = orUnknown(p.App)
	dst[6] = orUnknown(p.Version)
	dst[7] = orUnknown(p.Cluster)
}

// merge is self with the fields it lacks taken from seen.
func merge(self, seen streaminfo.Peer) streaminfo.Peer {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	return streaminfo.Peer{
		Workload:          pick(self.Workload, seen.Workload),
		Namespace:         pick(self.Namespace, seen.Namespace),
		App:               pick(self.App, seen.App),
		Version:           pick(self.Version, seen.Version),
		CanonicalService:  pick(self.CanonicalService, seen.CanonicalService),
		CanonicalRevision: pick(self.CanonicalRevision, seen.CanonicalRevision),
		Principal:         pick(self.Principal, seen.Principal),
		Cluster:           pick(self.Cluster, seen.Cluster),
	}
}

// canonicalService defaults like Istio's: the app label, else the workload name.
func canonicalService(p streaminfo.Peer) string {
	switch {
	case p.CanonicalService != "":
		return p.CanonicalService
	case p.App != "":
		return p.App
	}
	return orUnknown(p.Workload)
}

// canonicalRevision defaults like Istio's: the version label, else "latest".
func canonicalRevision(p streaminfo.Peer) string {
	switch {
	case p.CanonicalRevision != "":
		return p.CanonicalRevision
	case p.Version != "":
		return p.Version
	}
	return "latest"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

var smallCodes = func() [600]string {
	var a [600]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

// grpcStatus is s, as one of the package's own strings when it is a gRPC code ("0" to
// "16"): a value cut from an answer's head is new with every answer, and would neither be
// found by where it is (cached.seen) nor let its head's block go.
func grpcStatus(s string) string {
	n := -1
	switch {
	case len(s) == 1 && '0' <= s[0] && s[0] <= '9':
		n = int(s[0] - '0')
	case len(s) == 2 && s[0] == '1' && '0' <= s[1] && s[1] <= '6':
		n = 10 + int(s[1]-'0')
	}
	if n < 0 {
		return s
	}
	return smallCodes[n]
}

func responseCode(c int) string {
	if c >= 0 && c < len(smallCodes) {
		return smallCodes[c]
	}
	return strconv.Itoa(c)
}

// AddCounters adds a source of Envoy-style counters (cumulative values).
func (s *Stats) AddCounters(src CounterSource) {
	s.srcMu.Lock()
	s.counters = append(s.counters, src)
	s.srcMu.Unlock()
}

// AddGauges adds a source of Envoy-style gauges (current values).
func (s *Stats) AddGauges(src CounterSource) {
	s.srcMu.Lock()
	s.gauges = append(s.gauges, src)
	s.srcMu.Unlock()
}

func (s *Stats) sources() (counters, gauges []CounterSource) {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	return append([]CounterSource(nil), s.counters...), append([]CounterSource(nil), s.gauges...)
}

// PrometheusHandler serves every metric in Prometheus text format 0.0.4: Istio's
// metrics, then the Envoy-style stats named as Envoy's /stats/prometheus names them
// (see PrometheusName).
func (s *Stats) PrometheusHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry returns the registry behind PrometheusHandler, for callers that gather
// directly (the status server's merged /stats/prometheus).
func (s *Stats) Registry() *prometheus.Registry { return s.reg }
