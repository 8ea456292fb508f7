package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// A router's drain closes every listener but the ones it keeps (the health listener).
func TestDrainRouterKeepsHealthListener(t *testing.T) {
	echoBackend(t, "127.0.97.19:8080", "web")
	httpListener := func(name, addr string) *resource.Listener {
		return &resource.Listener{Name: name, Address: netip.MustParseAddrPort(addr), BindToPort: true, Direction: resource.Outbound,
			FilterChains: []resource.FilterChain{{HTTP: gatewayHCM("http.8080")}}}
	}
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{
			"0.0.0.0_8080":  httpListener("0.0.0.0_8080", "0.0.0.0:8080"),
			"0.0.0.0_15021": httpListener("0.0.0.0_15021", "0.0.0.0:15021"),
		},
		Routes:    map[string]*resource.RouteConfig{"http.8080": vhostRoutes("http.8080", [2]string{"*", "web"})},
		Clusters:  map[string]*resource.Cluster{"web": staticCluster("web", "127.0.97.19:8080")},
		Endpoints: map[string]*resource.Endpoints{},
	}
	p := newProxy(t, "127.0.97.18")
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	drained := p.DrainRouter(ctx, "0.0.0.0_15021")
	// Envoy's graceful drain: still accepting during the drain period (1 s here), told to close.
	resp, err := http.Get("http://127.0.97.18:8080/late")
	if err != nil {
		t.Fatalf("a new connection during the drain: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("during the drain: %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
	}
	select {
	case <-drained:
	case <-ctx.Done():
		t.Fatal("drain did not finish")
	}
	testutil.Eventually(t, 5*time.Second, "the gateway listener refuses after the drain period", func() bool {
		c, err := net.Dial("tcp", "127.0.97.18:8080")
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	c, err := net.Dial("tcp", "127.0.97.18:15021")
	if err != nil {
		t.Fatalf("the kept listener stopped: %v", err)
	}
	c.Close()
}
