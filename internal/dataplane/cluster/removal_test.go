package cluster

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// hostAt returns the host with addr.
func hostAt(t *testing.T, c *Cluster, addr string) *Host {
	t.Helper()
	for _, h := range c.Hosts() {
		if h.Addr == addr {
			return h
		}
	}
	t.Fatalf("no host %s", addr)
	return nil
}

func TestRemovedHostStreamsEndAfterGrace(t *testing.T) {
	const a, b = "127.0.93.1:80", "127.0.93.2:80"
	unhealthy := ep(b)
	unhealthy.Health = resource.Unhealthy
	tests := []struct {
		name    string
		kind    StreamKind
		opts    DrainOptions
		next    []resource.Endpoint // endpoints after the update
		back    bool                // the host comes back before the grace ends
		wantEnd bool
	}{
		{"http stream on removed host ends", HTTPStream, DrainOptions{HTTPGrace: 50 * time.Millisecond}, []resource.Endpoint{ep(a)}, false, true},
		{"tcp connection on removed host ends", TCPConnection, DrainOptions{TCPGrace: 50 * time.Millisecond}, []resource.Endpoint{ep(a)}, false, true},
		{"unhealthy host counts as gone", HTTPStream, DrainOptions{HTTPGrace: 50 * time.Millisecond}, []resource.Endpoint{ep(a), unhealthy}, false, true},
		{"host that stays keeps its streams", HTTPStream, DrainOptions{HTTPGrace: 50 * time.Millisecond}, []resource.Endpoint{ep(a), ep(b)}, false, false},
		{"host that comes back keeps its streams", HTTPStream, DrainOptions{HTTPGrace: 300 * time.Millisecond}, []resource.Endpoint{ep(a)}, true, false},
		{"off switch", TCPConnection, DrainOptions{TCPGrace: -1}, []resource.Endpoint{ep(a)}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t)
			m.SetDrainOptions(tt.opts)
			cfg := eds("c", resource.RoundRobin)
			c := install(t, m, cfg, ep(a), ep(b))
			hb := hostAt(t, c, b)
			ended := make(chan string, 1)
			var s Stream
			hb.Track(&s, tt.kind, EndFunc(func(reason string) { ended <- reason }))
			defer hb.Untrack(&s)
			if hb.TrackedStreams() != 1 {
				t.Fatalf("tracked = %d", hb.TrackedStreams())
			}
			install(t, m, cfg, tt.next...)
			if tt.back {
				install(t, m, cfg, ep(a), ep(b))
			}
			wait := 2 * time.Second
			if !tt.wantEnd {
				wait = 600 * time.Millisecond
			}
			timer := time.NewTimer(wait)
			defer timer.Stop()
			select {
			case r := <-ended:
				if !tt.wantEnd {
					t.Fatalf("stream ended: %s", r)
				}
				if !strings.Contains(r, b) || !strings.Contains(r, "drain grace period") {
					t.Fatalf("reason %q does not name the endpoint and the grace period", r)
				}
			case <-timer.C:
				if tt.wantEnd {
					t.Fatal("stream on the removed host was not ended")
				}
			}
		})
	}
}

func TestTrackStopForgetsHost(t *testing.T) {
	m := newTestManager(t)
	c := install(t, m, eds("c", resource.RoundRobin), ep("127.0.93.1:80"))
	h := c.Hosts()[0]
	var s1, s2 Stream
	h.Track(&s1, HTTPStream, EndFunc(func(string) {}))
	h.Track(&s2, TCPConnection, EndFunc(func(string) {}))
	h.Untrack(&s1)
	if h.TrackedStreams() != 1 {
		t.Fatalf("tracked = %d, want 1", h.TrackedStreams())
	}
	h.Untrack(&s2)
	h.Untrack(&s2) // a second Untrack does nothing
	if h.TrackedStreams() != 0 {
		t.Fatalf("tracked = %d after the last stream stopped, want 0", h.TrackedStreams())
	}
}

// Untrack of a stream whose end is running returns once the end has finished, so the
// owner may reuse what the end touches.
func TestUntrackWaitsForEnd(t *testing.T) {
	m := newTestManager(t)
	c := install(t, m, eds("c", resource.RoundRobin), ep("127.0.93.1:80"))
	h := c.Hosts()[0]
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	var s Stream
	h.Track(&s, HTTPStream, EndFunc(func(string) {
		close(started)
		<-release
		finished.Store(true)
	}))
	ended := make(chan struct{})
	go func() { defer close(ended); endStreams(h, HTTPStream, "gone") }()
	<-started
	untracked := make(chan bool)
	go func() { h.Untrack(&s); untracked <- finished.Load() }()
	close(release)
	if !<-untracked {
		t.Fatal("Untrack returned while the stream's end was still running")
	}
	<-ended
	if h.TrackedStreams() != 0 {
		t.Fatalf("tracked = %d, want 0", h.TrackedStreams())
	}
}

// TestOnHostsRemoved: Update reports the hosts that left each cluster (not those that only
// changed health or weight), and every host of a removed cluster.
func TestOnHostsRemoved(t *testing.T) {
	const a, b, c = "127.0.93.1:80", "127.0.93.2:80", "127.0.93.3:80"
	m := newTestManager(t)
	var got []string
	m.OnHostsRemoved(func(cluster string, addrs []string) {
		for _, ad := range addrs {
			got = append(got, cluster+" "+ad)
		}
	})
	cfg := eds("x", resource.RoundRobin)
	install(t, m, cfg, ep(a), ep(b), ep(c))
	unhealthy := ep(b)
	unhealthy.Health = resource.Unhealthy
	install(t, m, cfg, ep(a), unhealthy)
	if strings.Join(got, ",") != "x "+c {
		t.Fatalf("removed %v, want [x %s]", got, c)
	}
	got = nil
	m.Update(map[string]*resource.Cluster{}, nil)
	slices.Sort(got)
	if strings.Join(got, ",") != "x "+a+",x "+b {
		t.Fatalf("cluster removed: %v", got)
	}
}
