package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TestListenerConnectionLimit: a socket holds at most MaxConnectionsPerListener
// connections; one more is closed at once and counted as downstream_cx_overflow, and a
// closed connection gives its place back.
func TestListenerConnectionLimit(t *testing.T) {
	cm := cluster.NewManager(nil)
	ps := pool.NewSet(nil)
	fw := forward.New(forward.Options{Clusters: cm, Pools: ps})
	p := New(Options{IP: netip.MustParseAddr("127.0.213.1"), Forwarder: fw, Clusters: cm, Pools: ps, MaxConnectionsPerListener: 2})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		fw.Close()
		ps.Close()
	})
	// An HTTP listener: accepted connections stay open, idle, until closed.
	s := &resource.Snapshot{Listeners: map[string]*resource.Listener{"http": {Name: "http", Address: netip.MustParseAddrPort("127.0.213.1:7000"), BindToPort: true,
		FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{Routes: &resource.RouteConfig{Name: "r"}}}}}}}
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", "127.0.213.1:7000", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first, _ := dial(), dial()
	third := dial()
	_ = third.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := third.Read(make([]byte, 1)); err == nil {
		t.Fatal("the third connection was served")
	}
	stats := map[string]uint64{}
	p.EachListenerStat(func(n string, v uint64) { stats[n] = v })
	p.EachListenerGauge(func(n string, v uint64) { stats[n] = v })
	if stats["listener.127.0.213.1_7000.downstream_cx_overflow"] != 1 || stats["listener.127.0.213.1_7000.downstream_cx_active"] != 2 {
		t.Fatalf("stats %v", stats)
	}
	first.Close()
	testutil.EventuallyWhy(t, 2*time.Second, "the closed connection's place given back", func() (bool, string) {
		p.EachListenerGauge(func(n string, v uint64) { stats[n] = v })
		return stats["listener.127.0.213.1_7000.downstream_cx_active"] == 1, fmt.Sprintf("stats %v", stats)
	})
	fourth := dial()
	_ = fourth.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := fourth.Read(make([]byte, 1)); err == nil || !isTimeout(err) {
		t.Fatalf("the fourth connection, after one closed, was refused: %v", err)
	}
}
