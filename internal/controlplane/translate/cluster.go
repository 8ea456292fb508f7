package translate

import (
	"cmp"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpupstreampb "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// HTTPProtocolOptionsKey is the typed_extension_protocol_options key of upstream HTTP options.
const HTTPProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// passthroughIdleTimeout is Istio's idle timeout for the passthrough clusters.
const passthroughIdleTimeout = 5 * time.Minute

// outboundClusters are the static clusters and every visible service port's cluster (and
// subset clusters) with their endpoint assignments.
func (g *generator) outboundClusters() (clusters, endpoints []proto.Message, eds []edsKey) {
	clusters = append(clusters, g.passthroughCluster(PassthroughCluster), g.passthroughCluster(InboundPassthroughCluster), g.blackHoleCluster())
	add := func(s *model.Service, port model.Port, dr *model.DestinationRule, subset string) {
		c, cla := g.outboundCluster(s, port, dr, subset)
		clusters = append(clusters, c)
		if cla != nil {
			endpoints = append(endpoints, cla)
			eds = append(eds, edsKey{host: s.Host, port: port.Number, subset: subset})
		}
	}
	for _, s := range g.services {
		dr := g.m.DestinationRule(g.p.Namespace, g.p.Labels, s.Host)
		for _, port := range g.scope.ServicePorts(s) {
			add(s, port, dr, "")
			if dr == nil {
				continue
			}
			for _, sub := range dr.Spec.GetSubsets() {
				add(s, port, dr, sub.GetName())
			}
		}
	}
	return clusters, endpoints, eds
}

// inboundClusters are the proxy's inbound clusters, one per inbound port.
func (g *generator) inboundClusters() []proto.Message {
	var out []proto.Message
	for _, ip := range g.m.ProxyInboundPorts(g.p) {
		out = append(out, g.inboundCluster(ip))
	}
	return out
}

// outboundCluster is the cluster (and its assignment, for EDS) of service s's port and
// subset under dr. It depends on nothing else but the mesh, so a cache shares it.
func (g *generator) outboundCluster(s *model.Service, port model.Port, dr *model.DestinationRule, subset string) (*clusterpb.Cluster, *endpointpb.ClusterLoadAssignment) {
	if g.cache == nil {
		return g.buildOutboundCluster(s, port, dr, subset)
	}
	return g.cache.outboundCluster(clusterKey{svc: s, port: port, dr: dr, subset: subset}, func() (*clusterpb.Cluster, *endpointpb.ClusterLoadAssignment) {
		return g.buildOutboundCluster(s, port, dr, subset)
	})
}

func (g *generator) buildOutboundCluster(s *model.Service, port model.Port, dr *model.DestinationRule, subset string) (*clusterpb.Cluster, *endpointpb.ClusterLoadAssignment) {
	name := ClusterName("outbound", port.Number, subset, s.Host)
	policy := dr.Policy(port.Number, subset)
	c := &clusterpb.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_EDS},
		EdsClusterConfig:     &clusterpb.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: name},
		ConnectTimeout:       durationpb.New(g.m.ConnectTimeout()),
		LbPolicy:             clusterpb.Cluster_LEAST_REQUEST,
		CircuitBreakers:      circuitBreakers(policy.GetConnectionPool()),
	}
	applyRetryBudget(c.CircuitBreakers, policy.GetRetryBudget())
	if d := policy.GetConnectionPool().GetTcp().GetConnectTimeout(); d != nil {
		c.ConnectTimeout = durationpb.New(d.AsDuration())
	}
	applyLoadBalancer(c, policy.GetLoadBalancer())
	applyOutlierDetection(c, policy.GetOutlierDetection())
	applyTCPKeepalive(c, g.m.TCPKeepalive(), policy.GetConnectionPool().GetTcp().GetTcpKeepalive()) // streams.go
	if port.IsHTTP() {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{HTTPProtocolOptionsKey: mustAny(httpOptions(port, policy.GetConnectionPool()))}
	}
	c.Metadata = clusterMetadata(s, port, dr, subset)
	g.outboundMTLS(c, s, port, dr, subset) // peerauth.go: DestinationRule tls, auto mTLS
	if c.GetType() != clusterpb.Cluster_EDS {
		return c, nil
	}
	var selector map[string]string
	if sub := dr.Subset(subset); sub != nil {
		selector = sub.GetLabels()
	}
	meta := endpointMetadata
	if g.cache != nil {
		meta = g.cache.endpointMetadata
	}
	meta = g.withTLSMode(meta) // peerauth.go
	return c, loadAssignment(name, g.m.Endpoints(s.Host, port.Number), selector, meta)
}

func applyLoadBalancer(c *clusterpb.Cluster, lb *networkingv1alpha3.LoadBalancerSettings) {
	switch p := lb.GetLbPolicy().(type) {
	case *networkingv1alpha3.LoadBalancerSettings_Simple:
		switch p.Simple {
		case networkingv1alpha3.LoadBalancerSettings_ROUND_ROBIN:
			c.LbPolicy = clusterpb.Cluster_ROUND_ROBIN
		case networkingv1alpha3.LoadBalancerSettings_RANDOM:
			c.LbPolicy = clusterpb.Cluster_RANDOM
		case networkingv1alpha3.LoadBalancerSettings_PASSTHROUGH:
			// Istio turns the cluster into an original-destination cluster.
			c.ClusterDiscoveryType = &clusterpb.Cluster_Type{Type: clusterpb.Cluster_ORIGINAL_DST}
			c.EdsClusterConfig = nil
			c.LbPolicy = clusterpb.Cluster_CLUSTER_PROVIDED
		default:
			c.LbPolicy = clusterpb.Cluster_LEAST_REQUEST
		}
	case *networkingv1alpha3.LoadBalancerSettings_ConsistentHash:
		ch := p.ConsistentHash
		if _, ok := ch.GetHashAlgorithm().(*networkingv1alpha3.LoadBalancerSettings_ConsistentHashLB_Maglev); ok {
			c.LbPolicy = clusterpb.Cluster_MAGLEV
			if n := ch.GetMaglev().GetTableSize(); n > 0 {
				c.LbConfig = &clusterpb.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterpb.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(n)}}
			}
			return
		}
		c.LbPolicy = clusterpb.Cluster_RING_HASH
		size := ch.GetRingHash().GetMinimumRingSize()
		if size == 0 {
			size = ch.GetMinimumRingSize() //nolint:staticcheck // SA1019: Istio still honours the deprecated field
		}
		if size == 0 {
			size = 1024 // Istio's default minimum ring size
		}
		c.LbConfig = &clusterpb.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterpb.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(size)}}
	}
}

// circuitBreakers is Istio's default thresholds (all 2^32-1) with connectionPool overrides.
func circuitBreakers(cp *networkingv1alpha3.ConnectionPoolSettings) *clusterpb.CircuitBreakers {
	t := &clusterpb.CircuitBreakers_Thresholds{
		MaxConnections:     wrapperspb.UInt32(maxUint32),
		MaxPendingRequests: wrapperspb.UInt32(maxUint32),
		MaxRequests:        wrapperspb.UInt32(maxUint32),
		MaxRetries:         wrapperspb.UInt32(maxUint32),
		TrackRemaining:     true,
	}
	if n := cp.GetTcp().GetMaxConnections(); n > 0 {
		t.MaxConnections = wrapperspb.UInt32(uint32(n))
	}
	if n := cp.GetHttp().GetHttp1MaxPendingRequests(); n > 0 {
		t.MaxPendingRequests = wrapperspb.UInt32(uint32(n))
	}
	if n := cp.GetHttp().GetHttp2MaxRequests(); n > 0 {
		t.MaxRequests = wrapperspb.UInt32(uint32(n))
	}
	if n := cp.GetHttp().GetMaxRetries(); n > 0 {
		t.MaxRetries = wrapperspb.UInt32(uint32(n))
	}
	return &clusterpb.CircuitBreakers{Thresholds: []*clusterpb.CircuitBreakers_Thresholds{t}}
}

// applyRetryBudget maps trafficPolicy.retryBudget as Istio does: a retry_budget on the
// default thresholds, budget_percent defaulting to 20 % and min_retry_concurrency to 3.
func applyRetryBudget(cb *clusterpb.CircuitBreakers, rb *networkingv1alpha3.TrafficPolicy_RetryBudget) {
	if rb == nil {
		return
	}
	b := &clusterpb.CircuitBreakers_Thresholds_RetryBudget{
		BudgetPercent:       &typepb.Percent{Value: 20},
		MinRetryConcurrency: wrapperspb.UInt32(3),
	}
	if p := rb.GetPercent(); p != nil {
		b.BudgetPercent = &typepb.Percent{Value: p.GetValue()}
	}
	if n := rb.GetMinRetryConcurrency(); n > 0 {
		b.MinRetryConcurrency = wrapperspb.UInt32(n)
	}
	cb.Thresholds[0].RetryBudget = b
}

// httpOptions is the upstream HttpProtocolOptions: explicit HTTP/2 for http2/grpc ports
// (or h2UpgradePolicy UPGRADE), the downstream protocol with useClientProtocol, HTTP/1.1
// otherwise; idle timeout, max requests per connection and max connection duration from
// the DestinationRule.
func httpOptions(port model.Port, cp *networkingv1alpha3.ConnectionPoolSettings) *httpupstreampb.HttpProtocolOptions {
	o := &httpupstreampb.HttpProtocolOptions{}
	h := cp.GetHttp()
	switch {
	case h.GetUseClientProtocol():
		o.UpstreamProtocolOptions = &httpupstreampb.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &httpupstreampb.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions: &corepb.Http1ProtocolOptions{}, Http2ProtocolOptions: http2Options(h),
			},
		}
	case port.IsHTTP2() || h.GetH2UpgradePolicy() == networkingv1alpha3.ConnectionPoolSettings_HTTPSettings_UPGRADE:
		o.UpstreamProtocolOptions = &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: http2Options(h)},
		}}
	default:
		o.UpstreamProtocolOptions = &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corepb.Http1ProtocolOptions{}},
		}}
	}
	common := &corepb.HttpProtocolOptions{}
	set := false
	if d := h.GetIdleTimeout(); d != nil {
		common.IdleTimeout, set = durationpb.New(d.AsDuration()), true
	} else if d := cp.GetTcp().GetIdleTimeout(); d != nil {
		common.IdleTimeout, set = durationpb.New(d.AsDuration()), true
	}
	if n := h.GetMaxRequestsPerConnection(); n > 0 {
		common.MaxRequestsPerConnection, set = wrapperspb.UInt32(uint32(n)), true
	}
	if d := cp.GetTcp().GetMaxConnectionDuration(); d != nil {
		common.MaxConnectionDuration, set = durationpb.New(d.AsDuration()), true
	}
	if set {
		o.CommonHttpProtocolOptions = common
	}
	return o
}

func http2Options(h *networkingv1alpha3.ConnectionPoolSettings_HTTPSettings) *corepb.Http2ProtocolOptions {
	o := &corepb.Http2ProtocolOptions{ConnectionKeepalive: http2Keepalive(h)} // streams.go
	if n := h.GetMaxConcurrentStreams(); n > 0 {
		o.MaxConcurrentStreams = wrapperspb.UInt32(uint32(n))
	}
	return o
}

func clusterMetadata(s *model.Service, port model.Port, dr *model.DestinationRule, subset string) *corepb.Metadata {
	istio := map[string]any{
		"services": []any{map[string]any{"host": s.Host, "name": s.Host, "namespace": s.Namespace}},
	}
	lucid := map[string]any{"service_cluster": ClusterName("outbound", port.Number, "", s.Host)}
	if dr != nil {
		istio["config"] = dr.ConfigPath()
	}
	if subset != "" {
		istio["subset"] = subset
		sel := map[string]any{}
		if sub := dr.Subset(subset); sub != nil {
			for k, v := range sub.GetLabels() {
				sel[k] = v
			}
		}
		lucid["selector"] = sel
	}
	return &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": mustStruct(istio), "lucid": mustStruct(lucid)}}
}

func mustStruct(m map[string]any) *structpb.Struct {
	s, err := structpb.NewStruct(m)
	if err != nil {
		panic("translate: metadata: " + err.Error())
	}
	return s
}

func (g *generator) passthroughCluster(name string) *clusterpb.Cluster {
	c := &clusterpb.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_ORIGINAL_DST},
		ConnectTimeout:       durationpb.New(g.m.ConnectTimeout()),
		LbPolicy:             clusterpb.Cluster_CLUSTER_PROVIDED,
		CircuitBreakers:      circuitBreakers(nil),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{HTTPProtocolOptionsKey: mustAny(&httpupstreampb.HttpProtocolOptions{
			CommonHttpProtocolOptions: &corepb.HttpProtocolOptions{IdleTimeout: durationpb.New(passthroughIdleTimeout)},
			UpstreamProtocolOptions: &httpupstreampb.HttpProtocolOptions_UseDownstreamProtocolConfig{
				UseDownstreamProtocolConfig: &httpupstreampb.HttpProtocolOptions_UseDownstreamHttpConfig{
					HttpProtocolOptions: &corepb.Http1ProtocolOptions{}, Http2ProtocolOptions: &corepb.Http2ProtocolOptions{},
				},
			},
		})},
	}
	if name == PassthroughCluster {
		c.LbConfig = &clusterpb.Cluster_OriginalDstLbConfig_{OriginalDstLbConfig: &clusterpb.Cluster_OriginalDstLbConfig{UseHttpHeader: true}}
	}
	inboundPassthroughBind(c) // capture.go: from 127.0.0.6
	return c
}

func (g *generator) blackHoleCluster() *clusterpb.Cluster {
	return &clusterpb.Cluster{
		Name:                 BlackHoleCluster,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(g.m.ConnectTimeout()),
	}
}

// appAddress is where w's application listens (127.0.0.1 without a workload).
func appAddress(w *model.Workload) string {
	if w == nil || !w.AppAddress.IsValid() {
		return "127.0.0.1"
	}
	return w.AppAddress.String()
}

func (g *generator) inboundCluster(ip model.InboundPort) *clusterpb.Cluster {
	name := InboundClusterName(ip.Port)
	w := g.m.Workload(g.p)
	c := &clusterpb.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterpb.Cluster_Type{Type: clusterpb.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(g.m.ConnectTimeout()),
		LbPolicy:             clusterpb.Cluster_ROUND_ROBIN,
		CircuitBreakers:      circuitBreakers(nil),
		LoadAssignment: &endpointpb.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointpb.LocalityLbEndpoints{{LbEndpoints: []*endpointpb.LbEndpoint{{
				HostIdentifier: &endpointpb.LbEndpoint_Endpoint{Endpoint: &endpointpb.Endpoint{Address: socketAddress(appAddress(w), cmp.Or(ip.AppPort, ip.Port))}},
			}}}},
		},
	}
	if ip.Service != nil {
		c.Metadata = &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": mustStruct(map[string]any{
			"services": []any{map[string]any{"host": ip.Service.Host, "name": ip.Service.Host, "namespace": ip.Service.Namespace}},
		})}}
	}
	if ip.IsHTTP() {
		port := model.Port{Protocol: ip.Protocol}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{HTTPProtocolOptionsKey: mustAny(httpOptions(port, nil))}
	}
	return c
}
