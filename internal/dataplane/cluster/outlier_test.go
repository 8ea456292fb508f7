package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func odCluster(maxPct uint32, panicAt float64) *resource.Cluster {
	c := eds("od", resource.RoundRobin)
	c.HealthyPanicThreshold = panicAt
	c.OutlierDetection = &resource.OutlierDetection{Consecutive5xx: 2, EnforcingConsecutive5xx: 100,
		ConsecutiveGatewayFailure: 5, ConsecutiveLocalOriginFailure: 5, EnforcingConsecutiveLocalOriginFailure: 100,
		Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: maxPct}
	return c
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	// Istio's default 10 %: with 3 hosts, ejecting one would be 33 %, so none is ejected.
	m := newTestManager(t)
	c := install(t, m, odCluster(10, 0), ep("10.0.0.1:80"), ep("10.0.0.2:80"), ep("10.0.0.3:80"))
	h := c.Hosts()[0]
	c.ReportStatus(h, 500)
	c.ReportStatus(h, 500)
	if h.Ejected() || c.Stats().OutlierEjectionsOverflow.Load() != 1 || c.Stats().OutlierDetected5xx.Load() != 1 {
		t.Fatalf("ejected %v overflow %d", h.Ejected(), c.Stats().OutlierEjectionsOverflow.Load())
	}
	// 34 %: one host.
	c = install(t, m, odCluster(34, 0), ep("10.0.0.1:80"), ep("10.0.0.2:80"), ep("10.0.0.3:80"))
	for _, h := range c.Hosts() {
		c.ReportStatus(h, 503)
		c.ReportStatus(h, 503)
	}
	n := 0
	for _, h := range c.Hosts() {
		if h.Ejected() {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d hosts ejected, want 1", n)
	}
}

func TestOutlierSuccessResetsAndMultiplier(t *testing.T) {
	m := newTestManager(t)
	now := time.Unix(1000, 0)
	c := install(t, m, odCluster(100, 0), ep("10.0.0.1:80"), ep("10.0.0.2:80"))
	c.det.now = func() time.Time { return now }
	c.det.start = now // interval ticks at 1000 s + k × 10 s
	h := c.Hosts()[0]
	c.ReportStatus(h, 500)
	c.ReportStatus(h, 200) // resets
	c.ReportStatus(h, 500)
	if h.Ejected() {
		t.Fatal("ejected although a success came between the errors")
	}
	c.ReportLocalFailure(h, LocalConnectFailed) // counts as 503 without split
	if h.od.ejectedUntil.Load() != now.Add(30*time.Second).UnixNano() {
		t.Fatalf("first ejection until %v", time.Unix(0, h.od.ejectedUntil.Load()))
	}
	// Second ejection right after the first ends: twice the base time (1031 s + 60 s),
	// readmitted at the next interval tick, 1100 s.
	now = now.Add(31 * time.Second)
	c.ReportStatus(h, 500)
	c.ReportStatus(h, 500)
	if got := time.Unix(0, h.od.ejectedUntil.Load()); !got.Equal(time.Unix(1100, 0)) {
		t.Fatalf("second ejection until %v, want the interval tick at 1100 s", got.Unix())
	}
	if !h.od.ejectedNow(time.Unix(1099, 0).UnixNano()) || h.od.ejectedNow(time.Unix(1100, 0).UnixNano()) {
		t.Fatal("not readmitted exactly at the interval tick")
	}
}

func TestOutlierPickAndPanic(t *testing.T) {
	m := newTestManager(t)
	c := install(t, m, odCluster(100, 0), ep("10.0.0.1:80"), ep("10.0.0.2:80"))
	a := c.Hosts()[0]
	c.ReportStatus(a, 500)
	c.ReportStatus(a, 500)
	for range 10 {
		if h := pick(t, c, PickContext{}); h.Same(a) {
			t.Fatal("picked the ejected host")
		}
	}
	b := c.Hosts()[1]
	c.ReportStatus(b, 500)
	c.ReportStatus(b, 500)
	_, err := c.Pick(PickContext{})
	if err == nil || !strings.Contains(err.Error(), "all 2 endpoints of cluster od are ejected by outlier detection") {
		t.Fatalf("got %v", err)
	}
	// With Envoy's default panic threshold (50 %), all hosts ejected → panic: use them all.
	c = install(t, m, odCluster(100, -1), ep("10.0.0.1:80"), ep("10.0.0.2:80"))
	if _, err := c.Pick(PickContext{}); err != nil {
		t.Fatalf("panic mode: %v", err)
	}
}

func TestHashPickIsStableAndSpread(t *testing.T) {
	for _, lb := range []resource.LBPolicy{resource.RingHash, resource.Maglev} {
		m := newTestManager(t)
		c := install(t, m, eds("h", lb), ep("10.0.0.1:80"), ep("10.0.0.2:80"), ep("10.0.0.3:80"))
		counts := map[string]int{}
		for i := range 3000 {
			k := HashKey("user" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)))
			h1 := pick(t, c, PickContext{Hash: k, HasHash: true})
			h2 := pick(t, c, PickContext{Hash: k, HasHash: true})
			if h1 != h2 {
				t.Fatal("same hash, different hosts")
			}
			counts[h1.Addr]++
		}
		for a, n := range counts {
			if n < 300 {
				t.Errorf("%v: %s got %d of 3000", lb, a, n)
			}
		}
		// A new cluster version with one more host keeps most keys where they were.
		c2 := install(t, m, eds("h", lb), ep("10.0.0.1:80"), ep("10.0.0.2:80"), ep("10.0.0.3:80"), ep("10.0.0.4:80"))
		moved := 0
		for i := range 1000 {
			k := HashKey(strings.Repeat("k", i%13) + string(rune(i)))
			if pick(t, c, PickContext{Hash: k, HasHash: true}).Addr != pick(t, c2, PickContext{Hash: k, HasHash: true}).Addr {
				moved++
			}
		}
		if moved > 450 {
			t.Errorf("%v: %d of 1000 keys moved after adding a fourth host", lb, moved)
		}
	}
}
