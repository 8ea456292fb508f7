package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

// fleet is the connected sidecars: lightweight ADS clients, each a real xdsclient (the
// sidecar's own stream handling, decoding and validation, ACK/NACK) whose Applier keeps
// the decoded snapshot instead of running a proxy.
type fleet struct {
	sidecars []*sidecar
	clients  []*xdsclient.Client
	probe    atomic.Pointer[probe]
	watch    atomic.Pointer[lagWatch] // sustain.go
	wg       sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
	log      *slog.Logger
}

type sidecar struct {
	f   *fleet
	idx int

	mu      sync.Mutex // guards snap; held while a probe looks at it
	snap    *resource.Snapshot
	applies atomic.Int64
}

// Apply keeps the snapshot and tells the current probe.
func (s *sidecar) Apply(snap *resource.Snapshot) error {
	now := time.Now()
	s.applies.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = snap
	if p := s.f.probe.Load(); p != nil {
		p.check(s.idx, snap, now)
	}
	if w := s.f.watch.Load(); w != nil {
		w.observe(s.idx, snap, now)
	}
	return nil
}

// probe waits for a condition on every sidecar's decoded configuration and records when
// each sidecar first met it (the time its xdsclient applied the snapshot).
type probe struct {
	pred func(i int, snap *resource.Snapshot) bool
	who  []bool // the sidecars the probe waits for (those that see the change)
	mu   sync.Mutex
	at   []time.Time // per sidecar; zero until met
	left int
	done chan struct{}
}

func (p *probe) check(idx int, snap *resource.Snapshot, now time.Time) {
	if snap == nil || !p.who[idx] || !p.pred(idx, snap) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at[idx].IsZero() {
		return
	}
	p.at[idx] = now
	p.left--
	if p.left == 0 {
		close(p.done)
	}
}

// newFleet prepares n sidecars for ads; start connects them. The client pods are
// client-0000… at sidecarAddr(i). protocol is xdsclient's (ProtocolAuto: delta, as the
// server offers it); cache, when set, is shared by the clients (xdsclient.DecodeCache).
func newFleet(l layout, ads, protocol string, cache *xdsclient.DecodeCache, log *slog.Logger) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{cancel: cancel, ctx: ctx, log: log}
	for i := range l.sidecars {
		s := &sidecar{f: f, idx: i}
		f.sidecars = append(f.sidecars, s)
		ns := l.ns(i)
		f.clients = append(f.clients, xdsclient.New(xdsclient.Options{
			Server:  ads,
			NodeID:  fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", sidecarAddr(i), clientName(i), ns, ns),
			Cluster: "Kubernetes",
			Metadata: map[string]string{"NAME": clientName(i), "NAMESPACE": ns,
				"INSTANCE_IPS": sidecarAddr(i), "WORKLOAD_NAME": clientName(i)},
			Applier:     s,
			Logger:      log.With("sidecar", i),
			Protocol:    protocol,
			DecodeCache: cache,
		}))
	}
	if cache != nil {
		f.wg.Go(func() {
			t := time.NewTicker(10 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					cache.Sweep()
				}
			}
		})
	}
	return f
}

// start connects sidecars [from, to).
func (f *fleet) start(from, to int) {
	for i := from; i < to; i++ {
		c := f.clients[i]
		f.wg.Go(func() {
			if err := c.Run(f.ctx); err != nil {
				f.log.Error("xds client stopped", "sidecar", i, "error", err)
			}
		})
	}
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// newProbe is a probe for pred on the sidecars who selects (nil: all).
func (f *fleet) newProbe(pred func(int, *resource.Snapshot) bool, who func(i int) bool) *probe {
	p := &probe{pred: pred, who: make([]bool, len(f.sidecars)), at: make([]time.Time, len(f.sidecars)), done: make(chan struct{})}
	for i := range f.sidecars {
		if who == nil || who(i) {
			p.who[i] = true
			p.left++
		}
	}
	if p.left == 0 {
		close(p.done)
	}
	return p
}

// arm installs a probe for pred on the sidecars who selects. Their current snapshots must
// not meet it yet (a change must be a change); arm reports which one already does.
func (f *fleet) arm(pred func(*resource.Snapshot) bool, who func(i int) bool) (*probe, error) {
	p := f.newProbe(func(_ int, s *resource.Snapshot) bool { return pred(s) }, who)
	f.probe.Store(p)
	for _, s := range f.sidecars {
		s.mu.Lock()
		snap := s.snap
		s.mu.Unlock()
		if p.who[s.idx] && snap != nil && pred(snap) {
			f.probe.Store(nil)
			return nil, fmt.Errorf("sidecar %d already has the change before it was made", s.idx)
		}
	}
	return p, nil
}

// armAllowMet is arm for the first sync: sidecars that already meet pred count at once.
func (f *fleet) armAllowMet(pred func(int, *resource.Snapshot) bool, who func(i int) bool) *probe {
	p := f.newProbe(pred, who)
	f.probe.Store(p)
	for _, s := range f.sidecars {
		s.mu.Lock()
		snap := s.snap
		s.mu.Unlock()
		p.check(s.idx, snap, time.Now())
	}
	return p
}

// result of one probe: the time from start until the first, the median and the last
// sidecar met it, and how many sidecars it waited for.
type result struct {
	first, p50, all time.Duration
	n               int
}

// wait blocks until every sidecar met the probe, timeout passes or ctx ends, then disarms it.
func (f *fleet) wait(ctx context.Context, p *probe, start time.Time, timeout time.Duration) (result, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	case <-ctx.Done():
	}
	f.probe.CompareAndSwap(p, nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left > 0 {
		return result{}, fmt.Errorf("%d of %d sidecars still without the change after %s", p.left, len(p.at), timeout)
	}
	var ats []time.Time
	for i, at := range p.at {
		if p.who[i] {
			ats = append(ats, at)
		}
	}
	if len(ats) == 0 {
		return result{}, nil
	}
	slices.SortFunc(ats, func(a, b time.Time) int { return a.Compare(b) })
	return result{first: ats[0].Sub(start), p50: ats[(len(ats)-1)/2].Sub(start), all: ats[len(ats)-1].Sub(start), n: len(ats)}, nil
}

// applies is the total number of snapshots the sidecars applied.
func (f *fleet) applies() int64 {
	var n int64
	for _, s := range f.sidecars {
		n += s.applies.Load()
	}
	return n
}

// Predicates on a decoded configuration.

func clusterName(subset, host string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, host)
}

// hasEndpoint: cluster's endpoints contain addr:port.
func hasEndpoint(snap *resource.Snapshot, cluster, addr string) bool {
	e := snap.Endpoints[cluster]
	if e == nil {
		return false
	}
	want := fmt.Sprintf("%s:%d", addr, port)
	for _, ep := range e.Endpoints {
		if ep.Address.String() == want {
			return true
		}
	}
	return false
}

// fullConfig: every service sidecar i sees has its cluster with all its endpoints, and
// each subset cluster with its half.
func fullConfig(l layout) func(int, *resource.Snapshot) bool {
	byNS := map[string]func(*resource.Snapshot) bool{}
	for i := range l.namespaces {
		byNS[l.ns(i)] = fullConfigOf(l, i)
	}
	return func(i int, s *resource.Snapshot) bool { return byNS[l.ns(i)](s) }
}

// fullConfigOf is fullConfig for the sidecars of sidecar i's namespace.
func fullConfigOf(l layout, i int) func(*resource.Snapshot) bool {
	type want struct {
		cluster string
		n       int
	}
	var wants []want
	for s := range l.services {
		if !l.sees(i, s) {
			continue
		}
		h := l.host(s)
		wants = append(wants, want{clusterName("", h), l.endpoints})
		if l.hasDR(s) {
			wants = append(wants, want{clusterName("v1", h), (l.endpoints + 1) / 2}, want{clusterName("v2", h), l.endpoints / 2})
		}
	}
	return func(snap *resource.Snapshot) bool {
		for _, w := range wants {
			if _, ok := snap.Clusters[w.cluster]; !ok {
				return false
			}
			if e := snap.Endpoints[w.cluster]; e == nil || len(e.Endpoints) != w.n {
				return false
			}
		}
		return true
	}
}
