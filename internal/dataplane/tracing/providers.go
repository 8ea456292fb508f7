package tracing

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Resolver returns the address ("ip:port") of an endpoint of a cluster, or an error
// saying why it has none. The proxy's cluster manager answers it, so the collector is
// reached as Envoy reaches it: through its cluster.
type Resolver func(cluster string) (string, error)

// Providers are a proxy's tracers, one per tracing provider its listeners name (the
// tracing block of their HTTP connection managers), each with its batcher. They are
// made on first use and live until Close. Safe for concurrent use; a nil *Providers
// has no tracers.
type Providers struct {
	node    Node
	resolve Resolver
	opts    BatchOptions

	mu      sync.RWMutex
	tracers map[resource.TracingProvider]*providerTracer
	closed  bool
}

type providerTracer struct {
	tracer *Tracer
	batch  *Batcher
	sink   *clusterSink
}

// NewProviders returns the tracers of the proxy node; resolve finds collector endpoints.
func NewProviders(node Node, resolve Resolver, o BatchOptions) *Providers {
	return &Providers{node: node, resolve: resolve, opts: o, tracers: map[resource.TracingProvider]*providerTracer{}}
}

// Tracer returns the tracer of provider p, starting it on first use; nil after Close.
func (ps *Providers) Tracer(p resource.TracingProvider) *Tracer {
	if ps == nil {
		return nil
	}
	ps.mu.RLock()
	pt, ok := ps.tracers[p]
	ps.mu.RUnlock()
	if ok {
		return pt.tracer
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil
	}
	if pt, ok := ps.tracers[p]; ok {
		return pt.tracer
	}
	node := ps.node
	if p.ServiceName != "" {
		node.ServiceName = p.ServiceName
	}
	sink := &clusterSink{p: p, resolve: ps.resolve, timeout: ps.opts.SendTimeout}
	b := NewBatcher(&node, sink, ps.opts)
	pt = &providerTracer{tracer: New(node, b), batch: b, sink: sink}
	ps.tracers[p] = pt
	return pt.tracer
}

// Close exports what is queued (bounded by ctx) and stops every batcher.
func (ps *Providers) Close(ctx context.Context) {
	if ps == nil {
		return
	}
	ps.mu.Lock()
	ps.closed = true
	all := make([]*providerTracer, 0, len(ps.tracers))
	for _, pt := range ps.tracers {
		all = append(all, pt)
	}
	ps.mu.Unlock()
	for _, pt := range all {
		pt.batch.Close(ctx)
		pt.sink.close()
	}
}

// Flush exports what is queued now, for every provider (tests, shutdown).
func (ps *Providers) Flush(ctx context.Context) {
	if ps == nil {
		return
	}
	ps.mu.RLock()
	defer ps.mu.RUnlock()
	for _, pt := range ps.tracers {
		pt.batch.Flush(ctx)
	}
}

// EmitCounters reports, per tracer kind, the spans sent, dropped (the queue was full)
// and lost to failed exports, with Envoy's tracer stat prefix (tracing.opentelemetry.*,
// tracing.zipkin.*).
func (ps *Providers) EmitCounters(emit func(name string, value uint64)) {
	if ps == nil {
		return
	}
	sums := map[string]*[3]uint64{}
	ps.mu.RLock()
	for p, pt := range ps.tracers {
		s := sums[p.Kind]
		if s == nil {
			s = new([3]uint64)
			sums[p.Kind] = s
		}
		e, d, f := pt.batch.Counters()
		s[0], s[1], s[2] = s[0]+e, s[1]+d, s[2]+f
	}
	ps.mu.RUnlock()
	for kind, s := range sums {
		emit("tracing."+kind+".spans_sent", s[0])
		emit("tracing."+kind+".spans_dropped", s[1])
		emit("tracing."+kind+".spans_failed", s[2])
	}
}

// clusterSink sends to an endpoint of the provider's cluster, found at each export; the
// exporter for an address is kept while the address stays the same.
type clusterSink struct {
	p       resource.TracingProvider
	resolve Resolver
	timeout time.Duration

	mu   sync.Mutex // guards addr and out; held by one export at a time (one batcher loop)
	addr string
	out  Sink
}

func (c *clusterSink) Name() string { return c.p.Kind + " cluster " + c.p.Cluster }

func (c *clusterSink) Send(ctx context.Context, n *Node, spans []*Span) error {
	if c.resolve == nil {
		return fmt.Errorf("no resolver for cluster %s", c.p.Cluster)
	}
	addr, err := c.resolve(c.p.Cluster)
	if err != nil {
		return fmt.Errorf("tracing provider cluster %s: %w", c.p.Cluster, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out == nil || addr != c.addr {
		c.closeLocked()
		out, err := c.open(addr)
		if err != nil {
			return err
		}
		c.addr, c.out = addr, out
	}
	return c.out.Send(ctx, n, spans)
}

func (c *clusterSink) open(addr string) (Sink, error) {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	switch {
	case c.p.Kind == "zipkin":
		return NewZipkin("http://"+addr+c.p.HTTPPath, timeout), nil
	case c.p.HTTPPath != "":
		return NewOTLPHTTP("http://"+addr+c.p.HTTPPath, nil, timeout), nil
	}
	return NewOTLPGRPC(addr)
}

func (c *clusterSink) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *clusterSink) closeLocked() {
	if cl, ok := c.out.(interface{ Close() error }); ok {
		_ = cl.Close()
	}
	c.out = nil
}
