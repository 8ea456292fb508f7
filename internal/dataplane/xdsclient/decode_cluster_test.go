package xdsclient

import (
	"strings"
	"testing"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	httpupstreampb "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestDecodeCluster(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{
		"services": []any{map[string]any{"host": "reviews.default.svc.cluster.local", "name": "reviews", "namespace": "default"}},
		"config":   "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews",
		"subset":   "v1",
	})
	lmd, _ := structpb.NewStruct(map[string]any{"selector": map[string]any{"version": "v1"}, "service_cluster": "outbound|9080||reviews.default.svc.cluster.local"})
	c := fxClusterProto()
	c.Name = "outbound|9080|v1|reviews.default.svc.cluster.local"
	c.LbPolicy = clusterpb.Cluster_ROUND_ROBIN
	c.AltStatName = "alt"
	c.Metadata = &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": md, "lucid": lmd}}
	c.CircuitBreakers = &clusterpb.CircuitBreakers{Thresholds: []*clusterpb.CircuitBreakers_Thresholds{
		{Priority: corepb.RoutingPriority_HIGH, MaxConnections: wrapperspb.UInt32(1)},
		{MaxConnections: wrapperspb.UInt32(10), MaxPendingRequests: wrapperspb.UInt32(11), MaxRequests: wrapperspb.UInt32(12), MaxRetries: wrapperspb.UInt32(13)},
	}}
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, &httpupstreampb.HttpProtocolOptions{
		CommonHttpProtocolOptions: &corepb.HttpProtocolOptions{IdleTimeout: durationpb.New(time.Minute), MaxRequestsPerConnection: wrapperspb.UInt32(7)},
		UpstreamProtocolOptions: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corepb.Http2ProtocolOptions{}},
		}},
	})}
	got, err := DecodeCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	want := resource.ClusterInfo{
		ServiceHost: "reviews.default.svc.cluster.local", ServiceName: "reviews", ServiceNamespace: "default",
		DestinationRule: "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews", Subset: "v1",
		Selector: map[string]string{"version": "v1"}, ServiceCluster: "outbound|9080||reviews.default.svc.cluster.local",
	}
	if got.Info.ServiceHost != want.ServiceHost || got.Info.ServiceName != want.ServiceName || got.Info.ServiceNamespace != want.ServiceNamespace ||
		got.Info.DestinationRule != want.DestinationRule || got.Info.Subset != "v1" || got.Info.Selector["version"] != "v1" || got.Info.ServiceCluster != want.ServiceCluster {
		t.Errorf("info = %+v", got.Info)
	}
	if got.LBPolicy != resource.RoundRobin || got.Protocol != resource.HTTP2 || got.IdleTimeout != time.Minute || got.MaxRequestsPerConnection != 7 ||
		got.MaxConnections != 10 || got.MaxPendingRequests != 11 || got.MaxRequests != 12 || got.MaxRetries != 13 || got.AltStatName != "alt" ||
		got.ServiceName != fxCluster {
		t.Errorf("cluster = %+v", got)
	}

	// Defaults and other types.
	def, err := DecodeCluster(&clusterpb.Cluster{Name: "c", ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_EDS}, EdsClusterConfig: &clusterpb.Cluster_EdsClusterConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	if def.ConnectTimeout != 5*time.Second || def.ServiceName != "c" || def.IdleTimeout != time.Hour || def.Protocol != resource.HTTP1 || def.LBPolicy != resource.RoundRobin {
		t.Errorf("defaults = %+v", def)
	}
	pt, err := DecodeCluster(&clusterpb.Cluster{Name: "PassthroughCluster", ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_ORIGINAL_DST},
		LbPolicy: clusterpb.Cluster_CLUSTER_PROVIDED, LbConfig: &clusterpb.Cluster_OriginalDstLbConfig_{OriginalDstLbConfig: &clusterpb.Cluster_OriginalDstLbConfig{UseHttpHeader: true}},
		TypedExtensionProtocolOptions: map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(t, &httpupstreampb.HttpProtocolOptions{
			UpstreamProtocolOptions: &httpupstreampb.HttpProtocolOptions_UseDownstreamProtocolConfig{UseDownstreamProtocolConfig: &httpupstreampb.HttpProtocolOptions_UseDownstreamHttpConfig{}},
		})}})
	if err != nil {
		t.Fatal(err)
	}
	if pt.Type != resource.OriginalDst || !pt.UseHTTPHeader || pt.Protocol != resource.Downstream {
		t.Errorf("passthrough = %+v", pt)
	}
	st, err := DecodeCluster(&clusterpb.Cluster{Name: "inbound|9080||", ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_STATIC},
		LoadAssignment: &endpointpb.ClusterLoadAssignment{ClusterName: "inbound|9080||", Endpoints: []*endpointpb.LocalityLbEndpoints{{LbEndpoints: []*endpointpb.LbEndpoint{{
			HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: socketAddr("127.0.10.2", 8080)}},
		}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != resource.Static || st.LoadAssignment.Endpoints[0].Address.String() != "127.0.10.2:8080" {
		t.Errorf("static = %+v", st)
	}
}

func TestDecodeClusterErrors(t *testing.T) {
	base := func(f func(c *clusterpb.Cluster)) *clusterpb.Cluster {
		c := fxClusterProto()
		f(c)
		return c
	}
	tests := []struct {
		name string
		c    *clusterpb.Cluster
		want string
	}{
		{"health checks", base(func(c *clusterpb.Cluster) {
			c.HealthChecks = []*corepb.HealthCheck{{Timeout: durationpb.New(time.Second), Interval: durationpb.New(time.Second), UnhealthyThreshold: wrapperspb.UInt32(1), HealthyThreshold: wrapperspb.UInt32(1),
				HealthChecker: &corepb.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corepb.HealthCheck_TcpHealthCheck{}}}}
		}), "health_checks: not supported"},
		{"tls", base(func(c *clusterpb.Cluster) {
			c.TransportSocket = &corepb.TransportSocket{Name: "envoy.transport_sockets.alts"}
		}), `transport_socket: "envoy.transport_sockets.alts" is not supported`},
		{"unknown protocol options", base(func(c *clusterpb.Cluster) {
			c.TypedExtensionProtocolOptions = map[string]*anypb.Any{"x": mustAny(t, &corepb.Node{})}
		}), `typed_extension_protocol_options["x"]: not supported`},
		{"pgv", base(func(c *clusterpb.Cluster) { c.Name = "" }), "invalid: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCluster(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDecodeEndpoints(t *testing.T) {
	labels, _ := structpb.NewStruct(map[string]any{"app": "reviews", "version": "v2"})
	cla := &endpointpb.ClusterLoadAssignment{ClusterName: fxCluster, Endpoints: []*endpointpb.LocalityLbEndpoints{{
		Locality: &corepb.Locality{Region: "r1", Zone: "z1", SubZone: "s1"}, Priority: 1,
		LbEndpoints: []*endpointpb.LbEndpoint{
			{
				HostIdentifier:      &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: socketAddr("127.0.0.21", 9080)}},
				HealthStatus:        corepb.HealthStatus_DRAINING,
				LoadBalancingWeight: wrapperspb.UInt32(5),
				Metadata: &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{
					"istio": {Fields: map[string]*structpb.Value{"workload": structpb.NewStringValue("reviews-v2;default;reviews;v2;Kubernetes")}},
					"lucid": {Fields: map[string]*structpb.Value{"labels": structpb.NewStructValue(labels)}},
				}},
			},
			{HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: socketAddr("127.0.0.22", 9080)}}},
		},
	}}}
	got, err := DecodeEndpoints(cla)
	if err != nil {
		t.Fatal(err)
	}
	e0, e1 := got.Endpoints[0], got.Endpoints[1]
	if got.ClusterName != fxCluster || e0.Address.String() != "127.0.0.21:9080" || e0.Port != 9080 || e0.Health != resource.Draining || e0.Usable() ||
		e0.Weight != 5 || e0.Locality != "r1/z1/s1" || e0.Priority != 1 || e0.Workload != "reviews-v2;default;reviews;v2;Kubernetes" || e0.Labels["version"] != "v2" {
		t.Errorf("endpoint 0 = %+v", e0)
	}
	if e1.Health != resource.HealthUnknown || !e1.Usable() || e1.Weight != 1 || e1.Labels != nil {
		t.Errorf("endpoint 1 = %+v", e1)
	}
	bad := proto.Clone(cla).(*endpointpb.ClusterLoadAssignment)
	bad.Endpoints[0].LbEndpoints[1].GetEndpoint().Address = socketAddr("reviews.local", 9080)
	if _, err := DecodeEndpoints(bad); err == nil || !strings.Contains(err.Error(), `endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address: "reviews.local" is not an IP address`) {
		t.Errorf("hostname in EDS: %v", err)
	}
}

func TestDecodeListener(t *testing.T) {
	l := fxListenerProto(t)
	l.ListenerFilters = []*listenerpb.ListenerFilter{{Name: "envoy.filters.listener.http_inspector"}}
	l.DefaultFilterChain = &listenerpb.FilterChain{Name: "PassthroughFilterChain", Filters: []*listenerpb.Filter{
		{Name: "istio.stats"},
		{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(t, &tcppb.TcpProxy{
			StatPrefix: "PassthroughCluster", ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: "PassthroughCluster"},
		})}},
	}}
	l.FilterChains[0].FilterChainMatch = &listenerpb.FilterChainMatch{DestinationPort: wrapperspb.UInt32(9080), TransportProtocol: "raw_buffer", ApplicationProtocols: []string{"http/1.1", "h2c"}}
	got, err := DecodeListener(l)
	if err != nil {
		t.Fatal(err)
	}
	m := got.FilterChains[0].Match
	if m.DestinationPort != 9080 || m.TransportProtocol != "raw_buffer" || len(m.ApplicationProtocols) != 2 {
		t.Errorf("match = %+v", m)
	}
	d := got.DefaultChain
	if d == nil || d.Name != "PassthroughFilterChain" || d.TCP == nil || d.TCP.Cluster != "PassthroughCluster" || d.TCP.IdleTimeout != time.Hour || d.HTTP != nil {
		t.Errorf("default chain = %+v", d)
	}
	if h := got.FilterChains[0].HTTP; h.FaultFilter || h.StatPrefix != "outbound_0.0.0.0_9080" {
		t.Errorf("hcm = %+v", h)
	}
	v := &listenerpb.Listener{Name: "virtualOutbound", Address: socketAddr("127.0.10.2", 15001), UseOriginalDst: wrapperspb.Bool(true),
		FilterChains: []*listenerpb.FilterChain{{Filters: []*listenerpb.Filter{{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(t, &tcppb.TcpProxy{
			StatPrefix: "x", IdleTimeout: durationpb.New(0),
			ClusterSpecifier: &tcppb.TcpProxy_WeightedClusters{WeightedClusters: &tcppb.TcpProxy_WeightedCluster{Clusters: []*tcppb.TcpProxy_WeightedCluster_ClusterWeight{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}}}},
		})}}}}}}
	vo, err := DecodeListener(v)
	if err != nil {
		t.Fatal(err)
	}
	if !vo.BindToPort || !vo.UseOriginalDst || vo.Address.String() != "127.0.10.2:15001" || vo.FilterChains[0].TCP.IdleTimeout != 0 || vo.FilterChains[0].TCP.WeightedClusters[1].Weight != 3 {
		t.Errorf("virtualOutbound = %+v %+v", vo, vo.FilterChains[0].TCP)
	}
}

func TestDecodeListenerErrors(t *testing.T) {
	withHCM := func(f func(l *listenerpb.Listener)) *listenerpb.Listener {
		l := fxListenerProto(t)
		f(l)
		return l
	}
	tests := []struct {
		name string
		l    *listenerpb.Listener
		want string
	}{
		{"listener filter", withHCM(func(l *listenerpb.Listener) {
			l.ListenerFilters = []*listenerpb.ListenerFilter{{Name: "envoy.filters.listener.proxy_protocol"}}
		}), `listener_filters[0]: "envoy.filters.listener.proxy_protocol" is not supported`},
		{"network filter", withHCM(func(l *listenerpb.Listener) {
			l.FilterChains[0].Filters = append([]*listenerpb.Filter{{Name: "envoy.filters.network.rbac"}}, l.FilterChains[0].Filters...)
		}), `filter_chains[0].filters[0]: network filter "envoy.filters.network.rbac" is not supported`},
		{"hostname address", withHCM(func(l *listenerpb.Listener) { l.Address = socketAddr("localhost", 80) }), `address.socket_address.address: "localhost" is not an IP address`},
		{"server names", withHCM(func(l *listenerpb.Listener) {
			l.FilterChains[0].FilterChainMatch = &listenerpb.FilterChainMatch{ServerNames: []string{"a*.example.com"}}
		}), `filter_chains[0].filter_chain_match.server_names[0]: "a*.example.com": only a leading "*." wildcard is supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeListener(tt.l)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
