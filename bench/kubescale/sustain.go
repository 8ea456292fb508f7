package main

import (
	"context"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// lagWatch follows a stream of endpoint changes to a set of services and records, for
// every change and every sidecar, how long after the write the sidecar applied it (or a
// later state of the same service). Each write gives its service a new endpoint count
// (1..endpoints, never the previous one), so a sidecar's count tells which write it has.
type lagWatch struct {
	l        layout
	services []int          // watched services, visible to every sidecar
	clusters []string       // their cluster names
	index    map[string]int // cluster → position in services

	mu      sync.Mutex
	writes  [][]write               // per watched service, in order
	matched [][]int                 // per sidecar, per watched service: writes applied so far
	seen    [][]*resource.Endpoints // per sidecar, per watched service: last endpoints looked at
	lags    []time.Duration         // every (write, sidecar) lag
	maxLag  time.Duration
}

type write struct {
	n  int // endpoint count after it
	at time.Time
}

func newLagWatch(l layout, services []int) *lagWatch {
	w := &lagWatch{l: l, services: services, index: map[string]int{}}
	for i, s := range services {
		cl := clusterName("", l.host(s))
		w.clusters = append(w.clusters, cl)
		w.index[cl] = i
	}
	w.writes = make([][]write, len(services))
	w.matched = make([][]int, l.sidecars)
	w.seen = make([][]*resource.Endpoints, l.sidecars)
	for i := range l.sidecars {
		w.matched[i] = make([]int, len(services))
		w.seen[i] = make([]*resource.Endpoints, len(services))
	}
	return w
}

// wrote records a write to watched service k.
func (w *lagWatch) wrote(k, n int, at time.Time) {
	w.mu.Lock()
	w.writes[k] = append(w.writes[k], write{n: n, at: at})
	w.mu.Unlock()
}

// observe is called with every snapshot a sidecar applies.
func (w *lagWatch) observe(idx int, snap *resource.Snapshot, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, cl := range w.clusters {
		e := snap.Endpoints[cl]
		if e == nil || e == w.seen[idx][k] {
			continue // unchanged since the last look (the client keeps unchanged entries)
		}
		w.seen[idx][k] = e
		n := len(e.Endpoints)
		ws := w.writes[k]
		j := -1
		for x := len(ws) - 1; x >= w.matched[idx][k]; x-- {
			if ws[x].n == n {
				j = x
				break
			}
		}
		for x := w.matched[idx][k]; x <= j; x++ {
			lag := now.Sub(ws[x].at)
			w.lags = append(w.lags, lag)
			w.maxLag = max(w.maxLag, lag)
		}
		if j >= 0 {
			w.matched[idx][k] = j + 1
		}
	}
}

// behind is, at now, the longest any sidecar has been missing a write, and how many
// (write, sidecar) pairs are still missing.
func (w *lagWatch) behind(now time.Time) (time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var worst time.Duration
	missing := 0
	for idx := range w.matched {
		for k, ws := range w.writes {
			if m := w.matched[idx][k]; m < len(ws) {
				missing += len(ws) - m
				worst = max(worst, now.Sub(ws[m].at))
			}
		}
	}
	return worst, missing
}

// sustainResult is what the sustained churn measured.
type sustainResult struct {
	writes             int
	rate               float64 // achieved writes per second
	p50, p99, max      time.Duration
	worstBehind        time.Duration // the largest "behind" sampled during the run
	missing            int           // (write, sidecar) pairs never applied
	memory             []usage       // control plane samples during the run
	cpuSeconds         float64
	appliesPerSidecar  float64
	duration           time.Duration
	watchedServices    int
	writersConcurrency int
	convergence        convergence // the control plane's own view: change → push sent
}

// sustain writes rate endpoint changes per second for d to 100 services every sidecar sees
// (in the shared namespace when scoped), then waits up to 10 s for the sidecars to catch
// up, sampling the control plane's memory every 5 s and how far behind the sidecars are
// every 250 ms.
func sustain(ctx context.Context, b backend, fl *fleet, cp *child, o options) (sustainResult, error) {
	l := o.layout
	var svcs []int
	for s := range l.services {
		if l.ns(s) == sharedNamespace && len(svcs) < 100 {
			svcs = append(svcs, s)
		}
	}
	w := newLagWatch(l, svcs)
	fl.watch.Store(w)
	defer fl.watch.Store(nil)
	res := sustainResult{watchedServices: len(svcs), writersConcurrency: 4}
	counts := make([]int, len(svcs))
	for k := range svcs {
		counts[k] = l.endpoints
	}

	u, err := sample(cp, "")
	if err != nil {
		return res, err
	}
	res.memory = append(res.memory, u)
	cpuBefore, appliesBefore := u.cp.CPUSeconds, fl.applies()
	convBefore, err := scrapeConvergence(o.ip)
	if err != nil {
		return res, err
	}

	// The writers: write k is due at start + k/rate; a writer that falls behind writes at
	// once (the achieved rate says how far the backend kept up).
	var next atomic.Int64
	var failed atomic.Pointer[error]
	locks := make([]sync.Mutex, len(svcs))
	start := time.Now()
	end := start.Add(o.sustain)
	var wg sync.WaitGroup
	for range res.writersConcurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				due := start.Add(time.Duration(k) * time.Second / time.Duration(o.rate))
				if !due.Before(end) {
					return
				}
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				i := int(k) % len(svcs)
				locks[i].Lock()
				n := counts[i]%l.endpoints + 1 // 1..endpoints, never the previous count
				counts[i] = n
				w.wrote(i, n, time.Now())
				err := b.setEndpoints(ctx, svcs[i], allEndpoints(l.endpoints)[:n])
				locks[i].Unlock()
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	// The samplers: how far behind the sidecars are (every 250 ms), the control plane's
	// memory (every 5 s).
	stop := make(chan struct{})
	var samplers sync.WaitGroup
	var smu sync.Mutex
	every := func(d time.Duration, f func()) {
		samplers.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					f()
				}
			}
		})
	}
	every(250*time.Millisecond, func() {
		behind, _ := w.behind(time.Now())
		smu.Lock()
		res.worstBehind = max(res.worstBehind, behind)
		smu.Unlock()
	})
	every(5*time.Second, func() {
		if u, err := sample(cp, ""); err == nil {
			smu.Lock()
			res.memory = append(res.memory, u)
			smu.Unlock()
		}
	})
	wg.Wait()
	close(stop)
	samplers.Wait()
	res.duration = time.Since(start)
	res.writes = int(min(next.Load(), int64(o.sustain.Seconds()*float64(o.rate))))
	res.rate = float64(res.writes) / res.duration.Seconds()
	if e := failed.Load(); e != nil {
		return res, *e
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, missing := w.behind(time.Now()); missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	behind, missing := w.behind(time.Now())
	res.worstBehind, res.missing = max(res.worstBehind, behind), missing
	if u, err := sample(cp, ""); err == nil {
		res.memory = append(res.memory, u)
		res.cpuSeconds = u.cp.CPUSeconds - cpuBefore
	}
	res.appliesPerSidecar = float64(fl.applies()-appliesBefore) / float64(l.sidecars)
	if conv, err := scrapeConvergence(o.ip); err == nil {
		res.convergence = conv.since(convBefore)
	}
	w.mu.Lock()
	lags := w.lags
	res.max = w.maxLag
	w.mu.Unlock()
	res.p50, res.p99 = percentile(lags, 50), percentile(lags, 99)
	log.Printf("sustained: %d writes in %s (%.0f/s); lag p50 %s p99 %s max %s; worst behind %s; %d never applied",
		res.writes, res.duration.Round(time.Second), res.rate, res.p50.Round(time.Millisecond), res.p99.Round(time.Millisecond),
		res.max.Round(time.Millisecond), res.worstBehind.Round(time.Millisecond), res.missing)
	if res.writes == 0 {
		return res, fmt.Errorf("no write was made")
	}
	return res, nil
}
