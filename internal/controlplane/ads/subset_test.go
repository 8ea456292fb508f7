package ads

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// setGen serves whatever resources the test sets, the same for every node.
type setGen struct {
	mu  sync.Mutex
	res map[string][]proto.Message
}

func (g *setGen) set(typeURL string, rs ...proto.Message) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.res == nil {
		g.res = map[string][]proto.Message{}
	}
	g.res[typeURL] = rs
}

func (g *setGen) Generate(*corepb.Node) (Resources, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := Resources{}
	for k, v := range g.res {
		out[k] = []Part{NewPart(v...)}
	}
	return out, nil
}

func startSetServer(t *testing.T, g *setGen) (*Server, string) {
	t.Helper()
	return serve(t, g, slog.New(slog.DiscardHandler))
}

func edsCluster(name string) *clusterpb.Cluster {
	return &clusterpb.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_EDS},
		EdsClusterConfig:     &clusterpb.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
	}
}

func cla(name string, port uint32) *endpointpb.ClusterLoadAssignment {
	return &endpointpb.ClusterLoadAssignment{
		ClusterName: name,
		Endpoints: []*endpointpb.LocalityLbEndpoints{{Locality: &corepb.Locality{}, LbEndpoints: []*endpointpb.LbEndpoint{{
			HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: sockAddr("127.0.0.1", port)}},
		}}}},
	}
}

func routeConfig(name, cluster string) *routepb.RouteConfiguration {
	return &routepb.RouteConfiguration{Name: name, VirtualHosts: []*routepb.VirtualHost{{
		Name: name, Domains: []string{"*"},
		Routes: []*routepb.Route{{
			Match:  &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routepb.Route_Route{Route: &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: cluster}}},
		}},
	}}}
}

// rdsListener is a listener whose HTTP connection manager takes its routes from RDS route.
func rdsListener(t *testing.T, port uint32, route string) *listenerpb.Listener {
	t.Helper()
	hcm, err := anypb.New(&hcmpb.HttpConnectionManager{
		StatPrefix:     "outbound_0.0.0.0_" + route,
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{RouteConfigName: route, ConfigSource: adsSource()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerpb.Listener{
		Name:    fmt.Sprintf("0.0.0.0_%d", port),
		Address: sockAddr("0.0.0.0", port),
		FilterChains: []*listenerpb.FilterChain{{Filters: []*listenerpb.Filter{{
			Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
}

// Envoy's own request sequence on one ADS stream: CDS and LDS as wildcards, EDS and RDS by
// name, one of each naming a resource that does not exist yet. Every request is answered
// with the resources it names that exist (never left waiting because one is missing), and
// the missing ones arrive as soon as they exist.
func TestEnvoyRequestSequence(t *testing.T) {
	const (
		a, b, later = "outbound|80||a.default.svc.cluster.local", "outbound|80||b.default.svc.cluster.local", "outbound|80||later.default.svc.cluster.local"
	)
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(a), edsCluster(b))
	g.set(resourcev3.EndpointType, cla(a, 8001), cla(b, 8002))
	g.set(resourcev3.ListenerType, rdsListener(t, 80, "80"), rdsListener(t, 81, "81"))
	g.set(resourcev3.RouteType, routeConfig("80", a), routeConfig("81", b))
	s, addr := startSetServer(t, g)
	c := dial(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local", nil)

	c.request(resourcev3.ClusterType, "", "", nil, "")
	cds := c.next(resourcev3.ClusterType)
	if got := names(t, cds); !slices.Equal(sorted(got), []string{a, b}) {
		t.Fatalf("wildcard CDS = %v, want both clusters", got)
	}
	c.ack(cds, nil)

	eds := []string{a, b, later} // "later" is referenced before it exists
	c.request(resourcev3.EndpointType, "", "", eds, "")
	edsResp := c.next(resourcev3.EndpointType)
	if got := names(t, edsResp); !slices.Equal(sorted(got), []string{a, b}) {
		t.Fatalf("EDS for %v = %v, want the two that exist", eds, got)
	}
	c.ack(edsResp, eds)

	c.request(resourcev3.ListenerType, "", "", nil, "")
	lds := c.next(resourcev3.ListenerType)
	if got := names(t, lds); len(got) != 2 {
		t.Fatalf("wildcard LDS = %v, want both listeners", got)
	}
	c.ack(lds, nil)

	rds := []string{"81", "99"} // a subset of the routes, and one that does not exist yet
	c.request(resourcev3.RouteType, "", "", rds, "")
	rdsResp := c.next(resourcev3.RouteType)
	if got := names(t, rdsResp); !slices.Equal(got, []string{"81"}) {
		t.Fatalf("RDS for %v = %v, want only route 81", rds, got)
	}
	c.ack(rdsResp, rds)
	c.quiet("nothing changed")

	// The missing resources appear: each subscription gets them.
	g.set(resourcev3.EndpointType, cla(a, 8001), cla(b, 8002), cla(later, 8003))
	g.set(resourcev3.ClusterType, edsCluster(a), edsCluster(b), edsCluster(later))
	g.set(resourcev3.ListenerType, rdsListener(t, 80, "80"), rdsListener(t, 81, "81"), rdsListener(t, 99, "99"))
	g.set(resourcev3.RouteType, routeConfig("80", a), routeConfig("81", b), routeConfig("99", later))
	s.Push(PushRequest{Version: "2"})
	for range 4 {
		select {
		case resp := <-c.resps:
			got := sorted(names(t, resp))
			switch resp.GetTypeUrl() {
			case resourcev3.EndpointType:
				if !slices.Contains(got, later) {
					t.Errorf("EDS after %s appeared = %v, want it included", later, got)
				}
				c.ack(resp, eds)
			case resourcev3.RouteType:
				if !slices.Equal(got, []string{"99"}) {
					t.Errorf("RDS after route 99 appeared = %v, want the new route 99 only (81 did not change)", got)
				}
				c.ack(resp, rds)
			default: // CDS and LDS: the new cluster and listener that reference them
				if len(got) != 3 {
					t.Errorf("wildcard %s after the change = %v, want all three", shortType(resp.GetTypeUrl()), got)
				}
				c.ack(resp, nil)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the resources that appeared were not sent within 5s")
		}
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// A stream may mix a wildcard and named resources in one subscription ("*" plus names),
// and may narrow a wildcard subscription to names.
func TestWildcardAndNamedMixed(t *testing.T) {
	g := &setGen{}
	g.set(resourcev3.ListenerType, plainListener("l1", 81), plainListener("l2", 82), plainListener("l3", 83))
	_, addr := startSetServer(t, g)
	c := dial(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local", nil)

	c.request(resourcev3.ListenerType, "", "", []string{"l2"}, "")
	resp := c.next(resourcev3.ListenerType)
	if got := names(t, resp); !slices.Equal(got, []string{"l2"}) {
		t.Fatalf("LDS for [l2] = %v, want only l2", got)
	}
	c.ack(resp, []string{"l2"})

	c.request(resourcev3.ListenerType, resp.GetVersionInfo(), resp.GetNonce(), []string{"*", "l2"}, "")
	resp = c.next(resourcev3.ListenerType)
	if got := sorted(names(t, resp)); !slices.Equal(got, []string{"l1", "l2", "l3"}) {
		t.Fatalf("LDS for [*, l2] = %v, want every listener", got)
	}
}

func plainListener(name string, port uint32) *listenerpb.Listener {
	return &listenerpb.Listener{Name: name, Address: sockAddr("0.0.0.0", port)}
}

// A change that adds a cluster and routes to it, dropping the cluster the old route used:
// the new cluster goes out first, the route only after the client subscribed to (and got)
// the new cluster's endpoints, and the old cluster is removed only after the route moved,
// RemovalGrace later.
func TestNewClustersWarmBeforeRoutes(t *testing.T) {
	const old, next = "outbound|80|v1|a", "outbound|80|v2|a"
	g := &setGen{}
	g.set(resourcev3.ClusterType, edsCluster(old))
	g.set(resourcev3.EndpointType, cla(old, 8001))
	g.set(resourcev3.ListenerType, rdsListener(t, 80, "80"))
	g.set(resourcev3.RouteType, routeConfig("80", old))
	s, addr := startSetServer(t, g)
	s.RemovalGrace = 300 * time.Millisecond
	c := dial(t, addr, "sidecar~127.0.0.1~a.default~default.svc.cluster.local", nil)
	c.request(resourcev3.ClusterType, "", "", nil, "")
	c.ack(c.next(resourcev3.ClusterType), nil)
	c.request(resourcev3.EndpointType, "", "", []string{old}, "")
	eds := c.next(resourcev3.EndpointType)
	c.ack(eds, []string{old})
	c.request(resourcev3.ListenerType, "", "", nil, "")
	c.ack(c.next(resourcev3.ListenerType), nil)
	c.request(resourcev3.RouteType, "", "", []string{"80"}, "")
	c.ack(c.next(resourcev3.RouteType), []string{"80"})
	c.quiet("handshake done")

	g.set(resourcev3.ClusterType, edsCluster(next))
	g.set(resourcev3.EndpointType, cla(next, 8002))
	g.set(resourcev3.RouteType, routeConfig("80", next))
	s.Push(PushRequest{Version: "2"})
	cds := c.next(resourcev3.ClusterType)
	if got := sorted(names(t, cds)); !slices.Equal(got, []string{old, next}) {
		t.Fatalf("first CDS after the change = %v, want the new cluster beside the old one", got)
	}
	c.ack(cds, nil)
	c.quiet("routes before the client subscribed to the new cluster's endpoints")
	both := []string{old, next}
	c.request(resourcev3.EndpointType, eds.GetVersionInfo(), eds.GetNonce(), both, "")
	eds = c.next(resourcev3.EndpointType)
	if got := names(t, eds); !slices.Equal(got, []string{next}) {
		t.Fatalf("EDS = %v, want the new cluster's endpoints", got)
	}
	c.ack(eds, both)
	rds := c.next(resourcev3.RouteType)
	c.ack(rds, []string{"80"})
	began := time.Now()
	cds = c.next(resourcev3.ClusterType)
	if got := names(t, cds); !slices.Equal(got, []string{next}) {
		t.Fatalf("CDS after the routes moved = %v, want only the new cluster", got)
	}
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Errorf("old cluster removed %v after the routes moved, want RemovalGrace (300ms)", d)
	}
}
