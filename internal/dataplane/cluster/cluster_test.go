package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func newTestManager(t *testing.T) *Manager {
	t.Helper()
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	rng := rand.New(rand.NewPCG(7, 11))
	var mu sync.Mutex
	m.rnd = func(n uint64) uint64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Uint64N(n)
	}
	return m
}

func ep(addr string, labels ...string) resource.Endpoint {
	ap := netip.MustParseAddrPort(addr)
	e := resource.Endpoint{Address: ap, Port: uint32(ap.Port()), Weight: 1}
	if len(labels) > 0 {
		e.Labels = map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			e.Labels[labels[i]] = labels[i+1]
		}
	}
	return e
}

func eds(name string, lb resource.LBPolicy) *resource.Cluster {
	return &resource.Cluster{Name: name, Type: resource.EDS, ServiceName: name, LBPolicy: lb}
}

// install puts one EDS cluster with the given endpoints into m and returns it.
func install(t *testing.T, m *Manager, c *resource.Cluster, eps ...resource.Endpoint) *Cluster {
	t.Helper()
	m.Update(map[string]*resource.Cluster{c.Name: c}, map[string]*resource.Endpoints{c.Name: {ClusterName: c.Name, Endpoints: eps}})
	got := m.Get(c.Name)
	if got == nil {
		t.Fatalf("cluster %s not installed", c.Name)
	}
	return got
}

func pick(t *testing.T, c *Cluster, pc PickContext) *Host {
	t.Helper()
	h, err := c.Pick(pc)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	return h
}

func TestRoundRobinExact(t *testing.T) {
	m := newTestManager(t)
	c := install(t, m, eds("rr", resource.RoundRobin), ep("127.0.0.1:1"), ep("127.0.0.2:1"), ep("127.0.0.3:1"))
	var got []string
	for range 6 {
		got = append(got, pick(t, c, PickContext{}).Addr)
	}
	want := []string{"127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1", "127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("round robin order %v, want %v", got, want)
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	m := newTestManager(t)
	a, b, cc := ep("127.0.0.1:1"), ep("127.0.0.2:1"), ep("127.0.0.3:1")
	a.Weight = 5
	c := install(t, m, eds("wrr", resource.RoundRobin), a, b, cc)
	counts := map[string]int{}
	var first []string
	for i := range 700 {
		addr := pick(t, c, PickContext{}).Addr
		counts[addr]++
		if i < 7 {
			first = append(first, addr)
		}
	}
	if counts["127.0.0.1:1"] != 500 || counts["127.0.0.2:1"] != 100 || counts["127.0.0.3:1"] != 100 {
		t.Errorf("weighted round robin counts %v, want 500/100/100", counts)
	}
	// Smooth: the light hosts are not starved until the heavy one has had its turns.
	want := "[127.0.0.1:1 127.0.0.1:1 127.0.0.2:1 127.0.0.1:1 127.0.0.3:1 127.0.0.1:1 127.0.0.1:1]"
	if fmt.Sprint(first) != want {
		t.Errorf("first cycle %v, want %s", first, want)
	}
}

func TestLeastRequestPrefersIdleHost(t *testing.T) {
	m := newTestManager(t)
	c := install(t, m, eds("lr", resource.LeastRequest), ep("127.0.0.1:1"), ep("127.0.0.2:1"))
	busy := c.Hosts()[0]
	for range 10 {
		busy.RequestStart()
	}
	idle := 0
	const n = 10_000
	for range n {
		if pick(t, c, PickContext{}).Addr == "127.0.0.2:1" {
			idle++
		}
	}
	// Two draws with replacement: the busy host wins only when drawn twice (1/4).
	if f := float64(idle) / n; f < 0.72 || f > 0.78 {
		t.Errorf("idle host chosen %.3f of the time, want 0.75 ± 0.03", f)
	}
	for range 10 {
		busy.RequestEnd()
	}
	if got := busy.Stats.RqActive.Load(); got != 0 {
		t.Errorf("rq_active = %d after every request ended", got)
	}
	if got := busy.Stats.RqTotal.Load(); got != 10 {
		t.Errorf("rq_total = %d, want 10", got)
	}
}

func TestLeastRequestWeights(t *testing.T) {
	m := newTestManager(t)
	a, b := ep("127.0.0.1:1"), ep("127.0.0.2:1")
	a.Weight = 3
	c := install(t, m, eds("lrw", resource.LeastRequest), a, b)
	counts := map[string]int{}
	const n = 20_000
	for range n {
		counts[pick(t, c, PickContext{}).Addr]++
	}
	if f := float64(counts["127.0.0.1:1"]) / n; f < 0.73 || f > 0.77 {
		t.Errorf("weight-3 host chosen %.3f of the time with idle hosts, want 0.75 ± 0.02", f)
	}
}

func TestRandomIgnoresWeights(t *testing.T) {
	m := newTestManager(t)
	a := ep("127.0.0.1:1")
	a.Weight = 9
	c := install(t, m, eds("rnd", resource.Random), a, ep("127.0.0.2:1"))
	first := 0
	const n = 10_000
	for range n {
		if pick(t, c, PickContext{}).Addr == "127.0.0.1:1" {
			first++
		}
	}
	if f := float64(first) / n; f < 0.47 || f > 0.53 {
		t.Errorf("RANDOM chose the first host %.3f of the time, want 0.5 ± 0.03", f)
	}
}

func TestExcludeHonoured(t *testing.T) {
	for _, lb := range []resource.LBPolicy{resource.LeastRequest, resource.RoundRobin, resource.Random, resource.RingHash} {
		for _, weighted := range []bool{false, true} {
			t.Run(fmt.Sprintf("lb=%d/weighted=%v", lb, weighted), func(t *testing.T) {
				m := newTestManager(t)
				a, b, cc := ep("127.0.0.1:1"), ep("127.0.0.2:1"), ep("127.0.0.3:1")
				if weighted {
					a.Weight, b.Weight = 50, 20
				}
				c := install(t, m, eds("x", lb), a, b, cc)
				hs := c.Hosts()
				for range 200 {
					if h := pick(t, c, PickContext{Exclude: hs[:2]}); h != hs[2] {
						t.Fatalf("picked excluded host %s", h.Addr)
					}
				}
				// Every host excluded: still pick one rather than fail.
				pick(t, c, PickContext{Exclude: hs})
				// Exclusion holds across an update that rebuilds the host.
				cc.Health = resource.Degraded
				c2 := install(t, m, eds("x", lb), a, b, cc)
				if c2.Hosts()[2] == hs[2] || !c2.Hosts()[2].Same(hs[2]) {
					t.Fatal("changed endpoint should be a new *Host that is Same as the old one")
				}
				for range 50 {
					if h := pick(t, c2, PickContext{Exclude: []*Host{hs[0], hs[2]}}); !h.Same(hs[1]) {
						t.Fatalf("picked excluded host %s", h.Addr)
					}
				}
			})
		}
	}
}

func TestHostStateSurvivesUpdate(t *testing.T) {
	m := newTestManager(t)
	cfg := eds("outbound|9080||reviews.default.svc.cluster.local", resource.LeastRequest)
	c1 := install(t, m, cfg, ep("127.0.0.1:9080"), ep("127.0.0.2:9080"))
	h1 := c1.Hosts()[0]
	h1.RequestStart()
	c1.Stats().UpstreamRqTotal.Add(3)

	// Same endpoints, new config object: same hosts, same stats.
	cfg2 := *cfg
	c2 := install(t, m, &cfg2, ep("127.0.0.1:9080"), ep("127.0.0.2:9080"), ep("127.0.0.3:9080"))
	if c2.Hosts()[0] != h1 {
		t.Error("unchanged endpoint lost its *Host")
	}
	if c2.Stats() != c1.Stats() || c2.Stats().UpstreamRqTotal.Load() != 3 {
		t.Error("cluster stats did not survive the update")
	}
	if c2.Stats().MembershipTotal.Load() != 3 || c2.Stats().MembershipHealthy.Load() != 3 {
		t.Errorf("membership = %d/%d, want 3/3", c2.Stats().MembershipHealthy.Load(), c2.Stats().MembershipTotal.Load())
	}

	// Health changes: new *Host, same stats.
	unhealthy := ep("127.0.0.1:9080")
	unhealthy.Health = resource.Unhealthy
	c3 := install(t, m, &cfg2, unhealthy, ep("127.0.0.2:9080"))
	h3 := c3.Hosts()[0]
	if h3 == h1 || h3.Stats != h1.Stats || h3.Stats.RqActive.Load() != 1 || h3.Endpoint.Health != resource.Unhealthy {
		t.Errorf("changed endpoint: host %p stats %p rq_active %d health %v", h3, h3.Stats, h3.Stats.RqActive.Load(), h3.Endpoint.Health)
	}
	if c3.Stats().MembershipHealthy.Load() != 1 {
		t.Errorf("membership_healthy = %d, want 1", c3.Stats().MembershipHealthy.Load())
	}
	h1.RequestEnd() // a request started before the update ends after it
	if h3.Stats.RqActive.Load() != 0 {
		t.Error("rq_active not shared between host incarnations")
	}
	// The old Cluster still works for requests that hold it.
	if h := pick(t, c1, PickContext{}); h == nil {
		t.Fatal("old cluster has no host")
	}

	// Removed then re-added: fresh state.
	m.Update(nil, nil)
	if m.Get(cfg.Name) != nil {
		t.Fatal("removed cluster still present")
	}
	c4 := install(t, m, cfg, ep("127.0.0.1:9080"))
	if c4.Stats() == c1.Stats() || c4.Hosts()[0].Stats == h1.Stats {
		t.Error("a removed cluster's state came back")
	}
}

func TestManagerGetAll(t *testing.T) {
	m := newTestManager(t)
	static := &resource.Cluster{Name: "agent", Type: resource.Static,
		LoadAssignment: &resource.Endpoints{Endpoints: []resource.Endpoint{ep("127.0.0.1:15020")}}}
	dns := &resource.Cluster{Name: "dns", Type: resource.StrictDNS,
		LoadAssignment: &resource.Endpoints{Endpoints: []resource.Endpoint{{Hostname: "localhost", Port: 8080, Weight: 1}}}}
	sub := &resource.Cluster{Name: "outbound|9080|v1|reviews", Type: resource.EDS, ServiceName: "eds-v1"}
	noSvcName := &resource.Cluster{Name: "plain", Type: resource.EDS}
	m.Update(map[string]*resource.Cluster{"agent": static, "dns": dns, sub.Name: sub, "plain": noSvcName, "nil": nil},
		map[string]*resource.Endpoints{
			"eds-v1": {Endpoints: []resource.Endpoint{ep("127.0.0.5:9080")}},
			"plain":  {Endpoints: []resource.Endpoint{ep("127.0.0.6:80"), {}}},
		})
	var names []string
	for _, c := range m.All() {
		names = append(names, c.Name())
	}
	if fmt.Sprint(names) != "[agent dns outbound|9080|v1|reviews plain]" {
		t.Errorf("All = %v", names)
	}
	if m.Get("missing") != nil {
		t.Error("Get(missing) is not nil")
	}
	for name, want := range map[string]string{"agent": "127.0.0.1:15020", "dns": "localhost:8080", sub.Name: "127.0.0.5:9080", "plain": "127.0.0.6:80"} {
		c := m.Get(name)
		if len(c.Hosts()) != 1 || c.Hosts()[0].Addr != want {
			t.Errorf("%s hosts %v, want [%s]", name, addrs(c.Hosts()), want)
		}
		if c.Config().Name != name {
			t.Errorf("Config().Name = %q", c.Config().Name)
		}
	}
}

func TestPriorityFailover(t *testing.T) {
	m := newTestManager(t)
	p0 := ep("127.0.0.1:1")
	p0.Health = resource.Unhealthy
	p1a, p1b, p2 := ep("127.0.0.2:1"), ep("127.0.0.3:1"), ep("127.0.0.4:1")
	p1a.Priority, p1b.Priority, p2.Priority = 1, 1, 2
	c := install(t, m, eds("prio", resource.RoundRobin), p2, p0, p1a, p1b)
	for range 10 {
		if h := pick(t, c, PickContext{}); h.Endpoint.Priority != 1 {
			t.Fatalf("picked %s at priority %d, want priority 1", h.Addr, h.Endpoint.Priority)
		}
	}
}

func TestOriginalDst(t *testing.T) {
	m := newTestManager(t)
	m.Update(map[string]*resource.Cluster{"PassthroughCluster": {Name: "PassthroughCluster", Type: resource.OriginalDst}}, nil)
	c := m.Get("PassthroughCluster")
	h := pick(t, c, PickContext{OriginalDst: "127.0.0.9:8080"})
	if h.Addr != "127.0.0.9:8080" || h.Endpoint.Address != netip.MustParseAddrPort("127.0.0.9:8080") || h.Endpoint.Port != 8080 {
		t.Errorf("host %s endpoint %+v", h.Addr, h.Endpoint)
	}
	if again := pick(t, c, PickContext{OriginalDst: "127.0.0.9:8080"}); again != h {
		t.Error("same destination did not reuse its host")
	}
	named := pick(t, c, PickContext{OriginalDst: "localhost:9000"})
	if named.Endpoint.Hostname != "localhost" || named.Endpoint.Port != 9000 {
		t.Errorf("hostname destination endpoint %+v", named.Endpoint)
	}
	if got := addrs(c.Hosts()); fmt.Sprint(got) != "[127.0.0.9:8080 localhost:9000]" {
		t.Errorf("Hosts = %v", got)
	}
	// The cache survives an update.
	m.Update(map[string]*resource.Cluster{"PassthroughCluster": {Name: "PassthroughCluster", Type: resource.OriginalDst}}, nil)
	if again := pick(t, m.Get("PassthroughCluster"), PickContext{OriginalDst: "127.0.0.9:8080"}); again != h {
		t.Error("original destination host lost across update")
	}
	for _, bad := range []string{"", "127.0.0.1", "127.0.0.1:0", ":80", "h:http"} {
		_, err := c.Pick(PickContext{OriginalDst: bad})
		var nh *NoHealthyError
		if !errors.As(err, &nh) || nh.Cluster != "PassthroughCluster" {
			t.Errorf("OriginalDst %q: err %v, want *NoHealthyError", bad, err)
		}
	}
	if err := func() error { _, err := c.Pick(PickContext{}); return err }(); err.Error() != "cluster PassthroughCluster has no original destination for this request" {
		t.Errorf("empty destination: %q", err)
	}
}

func TestOriginalDstCacheBounded(t *testing.T) {
	m := newTestManager(t)
	m.Update(map[string]*resource.Cluster{"p": {Name: "p", Type: resource.OriginalDst}}, nil)
	c := m.Get("p")
	for i := range maxOrigDsts + 10 {
		pick(t, c, PickContext{OriginalDst: fmt.Sprintf("127.0.%d.%d:80", i/256, i%256)})
	}
	if n := len(c.Hosts()); n > maxOrigDsts {
		t.Errorf("cache holds %d hosts, bound is %d", n, maxOrigDsts)
	}
}

func TestStatsEach(t *testing.T) {
	var s Stats
	s.UpstreamCxTotal.Add(2)
	s.UpstreamRqActive.Add(-1) // a bug elsewhere must not print 2^64-1
	s.UpstreamRqRetryOverflow.Add(1)
	got := map[string]uint64{}
	prev := ""
	s.Each(func(name string, v uint64) {
		if name <= prev {
			t.Errorf("stat %q after %q: not sorted or duplicated", name, prev)
		}
		prev = name
		got[name] = v
	})
	if got["upstream_cx_total"] != 2 || got["upstream_rq_active"] != 0 || got["upstream_rq_retry_overflow"] != 1 {
		t.Errorf("values %v", got)
	}
	for _, name := range []string{"upstream_cx_none_healthy", "upstream_rq_retry_limit_exceeded", "upstream_cx_destroy_remote_with_active_rq",
		"upstream_rq_per_try_timeout", "upstream_rq_pending_overflow", "upstream_rq_5xx", "upstream_rq_completed"} {
		if _, ok := got[name]; !ok {
			t.Errorf("missing stat %s", name)
		}
	}
	if !IsGauge("upstream_rq_active") || IsGauge("upstream_rq_total") {
		t.Error("IsGauge wrong")
	}
	var hs HostStats
	hs.RqActive.Add(1)
	var order []string
	hs.Each(func(name string, v uint64) { order = append(order, fmt.Sprintf("%s=%d", name, v)) })
	if fmt.Sprint(order) != "[cx_total=0 cx_active=0 cx_connect_fail=0 rq_total=0 rq_timeout=0 rq_success=0 rq_error=0 rq_active=1]" {
		t.Errorf("host stats %v", order)
	}
}

func addrs(hs []*Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Addr)
	}
	return out
}

func TestReusedConnRetriesCollector(t *testing.T) {
	m := NewManager(nil)
	m.Update(map[string]*resource.Cluster{"outbound|80||a": {Name: "outbound|80||a"}}, nil)
	m.Get("outbound|80||a").Stats().UpstreamRqReusedConnRetry.Add(3)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collector())
	want := `# HELP lucid_upstream_reused_conn_retries_total Requests that failed on a reused upstream connection before any response byte and were sent again on a new connection.
# TYPE lucid_upstream_reused_conn_retries_total counter
lucid_upstream_reused_conn_retries_total{cluster="outbound|80||a"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
