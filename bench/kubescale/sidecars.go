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
	probe    atomic.Pointer[probe]
	wg       sync.WaitGroup
	cancel   context.CancelFunc
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
	return nil
}

// probe waits for a condition on every sidecar's decoded configuration and records when
// each sidecar first met it (the time its xdsclient applied the snapshot).
type probe struct {
	pred func(*resource.Snapshot) bool
	mu   sync.Mutex
	at   []time.Time // per sidecar; zero until met
	left int
	done chan struct{}
}

func (p *probe) check(idx int, snap *resource.Snapshot, now time.Time) {
	if snap == nil || !p.pred(snap) {
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

// startFleet connects n sidecars to ads; the client pods are client-000… at sidecarAddr(i).
func startFleet(l layout, ads string, log *slog.Logger) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{cancel: cancel}
	for i := range l.sidecars {
		s := &sidecar{f: f, idx: i}
		f.sidecars = append(f.sidecars, s)
		ns := l.ns(i)
		c := xdsclient.New(xdsclient.Options{
			Server:  ads,
			NodeID:  fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", sidecarAddr(i), clientName(i), ns, ns),
			Cluster: "Kubernetes",
			Metadata: map[string]string{"NAME": clientName(i), "NAMESPACE": ns,
				"INSTANCE_IPS": sidecarAddr(i), "WORKLOAD_NAME": clientName(i)},
			Applier: s,
			Logger:  log.With("sidecar", i),
		})
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := c.Run(ctx); err != nil {
				log.Error("xds client stopped", "sidecar", i, "error", err)
			}
		}()
	}
	return f
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// arm installs a probe for pred. Every sidecar's current snapshot must not meet it yet
// (a change must be a change); arm reports which one already does.
func (f *fleet) arm(pred func(*resource.Snapshot) bool) (*probe, error) {
	p := &probe{pred: pred, at: make([]time.Time, len(f.sidecars)), left: len(f.sidecars), done: make(chan struct{})}
	f.probe.Store(p)
	for _, s := range f.sidecars {
		s.mu.Lock()
		snap := s.snap
		s.mu.Unlock()
		if snap != nil && pred(snap) {
			f.probe.Store(nil)
			return nil, fmt.Errorf("sidecar %d already has the change before it was made", s.idx)
		}
	}
	return p, nil
}

// armAllowMet is arm for the first sync: sidecars that already meet pred count at once.
func (f *fleet) armAllowMet(pred func(*resource.Snapshot) bool) *probe {
	p := &probe{pred: pred, at: make([]time.Time, len(f.sidecars)), left: len(f.sidecars), done: make(chan struct{})}
	f.probe.Store(p)
	if len(f.sidecars) == 0 {
		close(p.done)
	}
	return p
}

// result of one probe: the time from start until the first and the last sidecar met it.
type result struct {
	first, all time.Duration
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
	ats := slices.Clone(p.at)
	slices.SortFunc(ats, func(a, b time.Time) int { return a.Compare(b) })
	return result{first: ats[0].Sub(start), all: ats[len(ats)-1].Sub(start)}, nil
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

// fullConfig: every service's cluster with all its endpoints, and each subset cluster
// with its half.
func fullConfig(l layout) func(*resource.Snapshot) bool {
	type want struct {
		cluster string
		n       int
	}
	var wants []want
	for s := range l.services {
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
