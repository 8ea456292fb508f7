package cluster

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// TestPickConcurrent runs Pick, RequestStart/End, Get and Update together; run with -race.
func TestPickConcurrent(t *testing.T) {
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	policies := []resource.LBPolicy{resource.LeastRequest, resource.RoundRobin, resource.Random}
	update := func(gen int) {
		clusters := map[string]*resource.Cluster{}
		endpoints := map[string]*resource.Endpoints{}
		for i, lb := range policies {
			name := fmt.Sprintf("c%d", i)
			clusters[name] = eds(name, lb)
			var eps []resource.Endpoint
			for j := range 4 {
				e := ep(fmt.Sprintf("127.0.0.%d:80", j+1))
				e.Weight = uint32(1 + (gen+j)%3*i) // weights change between updates for some clusters
				eps = append(eps, e)
			}
			endpoints[name] = &resource.Endpoints{Endpoints: eps}
		}
		clusters["PassthroughCluster"] = &resource.Cluster{Name: "PassthroughCluster", Type: resource.OriginalDst}
		m.Update(clusters, endpoints)
	}
	update(0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var prev []*Host
			for i := range 2000 {
				c := m.Get(fmt.Sprintf("c%d", (g+i)%len(policies)))
				h, err := c.Pick(PickContext{Exclude: prev})
				if err != nil {
					t.Errorf("Pick: %v", err)
					return
				}
				h.RequestStart()
				c.Stats().UpstreamRqTotal.Add(1)
				h.RequestEnd()
				prev = append(prev[:0], h)
				if _, err := m.Get("PassthroughCluster").Pick(PickContext{OriginalDst: fmt.Sprintf("127.0.1.%d:80", i%50)}); err != nil {
					t.Errorf("original dst: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for gen := 1; gen < 200; gen++ {
			update(gen)
			_ = m.All()
		}
	})
	wg.Wait()
	var total uint64
	for _, c := range m.All() {
		total += c.Stats().UpstreamRqTotal.Load()
		for _, h := range c.Hosts() {
			if a := h.Stats.RqActive.Load(); a != 0 {
				t.Errorf("%s %s rq_active = %d after all requests ended", c.Name(), h.Addr, a)
			}
		}
	}
	if total != 4*2000 {
		t.Errorf("upstream_rq_total sums to %d across updates, want %d", total, 4*2000)
	}
}

func TestPickAllocationFree(t *testing.T) {
	m := newTestManager(t)
	m.rnd = NewManager(slog.New(slog.NewTextHandler(io.Discard, nil))).rnd
	for _, lb := range []resource.LBPolicy{resource.LeastRequest, resource.RoundRobin, resource.Random} {
		a := ep("127.0.0.1:1")
		c := install(t, m, eds(fmt.Sprint(lb), lb), a, ep("127.0.0.2:1"), ep("127.0.0.3:1"))
		ex := []*Host{c.Hosts()[0]}
		if n := testing.AllocsPerRun(100, func() { _, _ = c.Pick(PickContext{Exclude: ex}) }); n != 0 {
			t.Errorf("lb %d: Pick allocates %v times, want 0", lb, n)
		}
		a.Weight = 4
		c = install(t, m, eds(fmt.Sprint(lb), lb), a, ep("127.0.0.2:1"), ep("127.0.0.3:1"))
		if n := testing.AllocsPerRun(100, func() { _, _ = c.Pick(PickContext{}) }); n != 0 {
			t.Errorf("lb %d weighted: Pick allocates %v times, want 0", lb, n)
		}
	}
	m.Update(map[string]*resource.Cluster{"p": {Name: "p", Type: resource.OriginalDst}}, nil)
	p := m.Get("p")
	_, _ = p.Pick(PickContext{OriginalDst: "127.0.0.1:80"})
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Pick(PickContext{OriginalDst: "127.0.0.1:80"}) }); n != 0 {
		t.Errorf("original dst: Pick of a known destination allocates %v times, want 0", n)
	}
}

func BenchmarkPick(b *testing.B) {
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var eps []resource.Endpoint
	for i := range 20 {
		eps = append(eps, ep(fmt.Sprintf("127.0.0.%d:80", i+1)))
	}
	for _, lb := range []struct {
		name string
		lb   resource.LBPolicy
	}{{"least_request", resource.LeastRequest}, {"round_robin", resource.RoundRobin}, {"random", resource.Random}} {
		m.Update(map[string]*resource.Cluster{"c": eds("c", lb.lb)}, map[string]*resource.Endpoints{"c": {Endpoints: eps}})
		c := m.Get("c")
		b.Run(lb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h, _ := c.Pick(PickContext{})
					h.RequestStart()
					h.RequestEnd()
				}
			})
		})
	}
}
