package xdsclient

import (
	"context"
	"slices"
	"testing"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// deltaRequests returns the recorded delta requests of typeURL.
func (cp *controlPlane) deltaRequests(typeURL string) []*discoverypb.DeltaDiscoveryRequest {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var out []*discoverypb.DeltaDiscoveryRequest
	for _, r := range cp.deltas {
		if r.GetTypeUrl() == typeURL {
			out = append(out, r)
		}
	}
	return out
}

// By default the client speaks the delta protocol to a server that offers it: it gets the
// whole configuration, endpoint names subscribed one by one, and changes as they come.
func TestDeltaWhenOffered(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, "", "127.0.0.11", "127.0.0.12"))
	rec := &recorder{}
	c := startClientWith(t, cp.addr, rec, ProtocolAuto)

	testutil.Eventually(t, 10*time.Second, "a complete snapshot", func() bool { return complete(rec.last()) })
	if st := c.Status(); st.Protocol != ProtocolDelta || !st.Connected {
		t.Fatalf("status = %+v, want connected over delta", st)
	}
	if n := len(cp.requests(ListenerType)); n != 0 {
		t.Errorf("%d state-of-the-world LDS requests to a server offering delta", n)
	}
	eds := cp.deltaRequests(EndpointType)
	if len(eds) == 0 || !slices.Equal(eds[0].GetResourceNamesSubscribe(), []string{fxCluster}) {
		t.Errorf("first EDS delta request = %v, want a subscription to %s", eds, fxCluster)
	}

	cp.set(t, "2", fullConfig(t, "", "127.0.0.13"))
	testutil.Eventually(t, 10*time.Second, "version 2 endpoints", func() bool {
		s := rec.last()
		return len(s.Endpoints[fxCluster].Endpoints) == 1 && s.Endpoints[fxCluster].Endpoints[0].Address.String() == "127.0.0.13:9080"
	})

	// An invalid route is NACKed over delta; the previous routes keep serving.
	cp.set(t, "3", fullConfig(t, "(", "127.0.0.13"))
	testutil.Eventually(t, 10*time.Second, "a delta NACK of RDS", func() bool {
		for _, r := range cp.deltaRequests(RouteType) {
			if r.GetErrorDetail() != nil {
				return true
			}
		}
		return false
	})
	if st := c.Status().Types["RDS"]; st.NackReason == "" {
		t.Errorf("RDS status after NACK = %+v", st)
	}
	if s := rec.last(); s.Routes[fxRoute] == nil {
		t.Error("routes gone after a rejected update")
	}
}

// A server without the delta protocol gets state of the world.
func TestSotWWhenDeltaNotOffered(t *testing.T) {
	cp := startControlPlaneWith(t, "127.0.0.1:0", true)
	cp.set(t, "1", fullConfig(t, "", "127.0.0.11"))
	rec := &recorder{}
	c := startClientWith(t, cp.addr, rec, ProtocolAuto)
	testutil.Eventually(t, 10*time.Second, "a complete snapshot", func() bool { return complete(rec.last()) })
	if st := c.Status(); st.Protocol != ProtocolSotW {
		t.Fatalf("protocol = %q, want %q", st.Protocol, ProtocolSotW)
	}
}

// Reconnecting over delta, the client tells the server what it has (initial versions).
func TestDeltaReconnectSendsInitialVersions(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	addr := cp.addr
	cp.set(t, "1", fullConfig(t, "", "127.0.0.11"))
	rec := &recorder{}
	c := startClientWith(t, addr, rec, ProtocolAuto)
	testutil.Eventually(t, 10*time.Second, "a complete snapshot", func() bool { return complete(rec.last()) })
	cp.stop()
	testutil.Eventually(t, 10*time.Second, "disconnected", func() bool { return !c.Status().Connected })

	cp2 := startControlPlane(t, addr)
	cp2.set(t, "2", fullConfig(t, "", "127.0.0.11", "127.0.0.12"))
	testutil.Eventually(t, 10*time.Second, "version 2 after reconnect", func() bool { return len(rec.last().Endpoints[fxCluster].Endpoints) == 2 })
	// The endpoints can arrive before the client has asked for listeners on the new stream
	// (it subscribes type by type): wait for both first requests before reading them.
	testutil.Eventually(t, 10*time.Second, "LDS and CDS requests on the new stream", func() bool {
		return len(cp2.deltaRequests(ListenerType)) > 0 && len(cp2.deltaRequests(ClusterType)) > 0
	})
	for _, url := range []string{ListenerType, ClusterType} {
		reqs := cp2.deltaRequests(url)
		if len(reqs[0].GetInitialResourceVersions()) != 1 {
			t.Errorf("first %s delta request on the new stream = %v, want the held resource's version", url, reqs)
		}
	}
}

// Clients sharing a DecodeCache hold the very same decoded resources.
func TestDecodeCacheShares(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, "", "127.0.0.11"))
	cache := &DecodeCache{}
	var recs [2]*recorder
	for i := range recs {
		recs[i] = &recorder{}
		c := New(Options{Server: cp.addr, NodeID: testNode, Applier: recs[i], DecodeCache: cache,
			BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, "both complete", func() bool { return complete(recs[0].last()) && complete(recs[1].last()) })
	a, b := recs[0].last(), recs[1].last()
	if a.Clusters[fxCluster] != b.Clusters[fxCluster] || a.Endpoints[fxCluster] != b.Endpoints[fxCluster] {
		t.Error("two clients with one DecodeCache decoded the same resources separately")
	}
	cache.Sweep()
	cache.Sweep()
	if n := len(cache.byID); n != 0 {
		t.Errorf("%d entries after two sweeps with no use, want 0", n)
	}
}
