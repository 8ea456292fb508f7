package xdsclient

import (
	"fmt"
	"net/netip"
	"sort"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpupstreampb "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

const (
	defaultConnectTimeout  = 5e9 // 5 s
	rawBufferSocket        = "envoy.transport_sockets.raw_buffer"
	httpProtocolOptionsExt = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// DecodeCluster validates and converts a Cluster.
func DecodeCluster(c *clusterpb.Cluster) (*resource.Cluster, error) {
	if err := validate(c); err != nil {
		return nil, err
	}
	out := &resource.Cluster{
		Name:                     c.GetName(),
		ConnectTimeout:           durationOr(c.GetConnectTimeout(), defaultConnectTimeout),
		AltStatName:              c.GetAltStatName(),
		IdleTimeout:              durationOr(c.GetCommonHttpProtocolOptions().GetIdleTimeout(), defaultIdleTimeout), //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		MaxRequestsPerConnection: c.GetMaxRequestsPerConnection().GetValue(),                                        //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		UseHTTPHeader:            c.GetOriginalDstLbConfig().GetUseHttpHeader(),
	}
	decodeTCPKeepalive(c, out) // decode_keepalive.go
	// decode_capture.go: upstream_bind_config
	if err := decodeBindConfig(c, out); err != nil {
		return nil, err
	}
	switch t := c.GetClusterDiscoveryType().(type) {
	case nil:
		out.Type = resource.Static // Envoy's default type
	case *clusterpb.Cluster_Type:
		switch t.Type {
		case clusterpb.Cluster_EDS:
			out.Type = resource.EDS
		case clusterpb.Cluster_STATIC:
			out.Type = resource.Static
		case clusterpb.Cluster_ORIGINAL_DST:
			out.Type = resource.OriginalDst
		case clusterpb.Cluster_STRICT_DNS:
			out.Type = resource.StrictDNS
		case clusterpb.Cluster_LOGICAL_DNS:
			out.Type = resource.LogicalDNS
		default:
			return nil, fmt.Errorf("type: %s is not supported", t.Type)
		}
	default:
		return nil, fmt.Errorf("cluster_type: custom cluster types are not supported")
	}
	if out.Type == resource.EDS {
		out.ServiceName = c.GetEdsClusterConfig().GetServiceName()
		if out.ServiceName == "" {
			out.ServiceName = out.Name
		}
	}
	switch c.GetLbPolicy() {
	case clusterpb.Cluster_LEAST_REQUEST:
		out.LBPolicy = resource.LeastRequest
	case clusterpb.Cluster_ROUND_ROBIN:
		out.LBPolicy = resource.RoundRobin
	case clusterpb.Cluster_RANDOM:
		out.LBPolicy = resource.Random
	case clusterpb.Cluster_RING_HASH:
		out.LBPolicy = resource.RingHash
	case clusterpb.Cluster_MAGLEV:
		out.LBPolicy = resource.Maglev
	case clusterpb.Cluster_CLUSTER_PROVIDED:
		if out.Type != resource.OriginalDst {
			return nil, fmt.Errorf("lb_policy: CLUSTER_PROVIDED needs type ORIGINAL_DST")
		}
	default:
		return nil, fmt.Errorf("lb_policy: %s is not supported", c.GetLbPolicy())
	}
	switch {
	case c.GetLoadBalancingPolicy() != nil:
		return nil, fmt.Errorf("load_balancing_policy: not supported")
	case len(c.GetHealthChecks()) > 0:
		return nil, fmt.Errorf("health_checks: not supported")
	case c.GetLbSubsetConfig() != nil:
		return nil, fmt.Errorf("lb_subset_config: not supported")
	case len(c.GetFilters()) > 0:
		return nil, fmt.Errorf("filters: not supported")
	case c.GetUpstreamConfig() != nil:
		return nil, fmt.Errorf("upstream_config: not supported")
	case c.GetHttp2ProtocolOptions() != nil: //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		out.Protocol = resource.HTTP2 // deprecated field, same meaning as explicit http2
	}
	for _, th := range c.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() != corepb.RoutingPriority_DEFAULT {
			continue
		}
		if rb := th.GetRetryBudget(); rb != nil {
			out.RetryBudget = &resource.RetryBudget{BudgetPercent: 20, MinRetryConcurrency: 3}
			if p := rb.GetBudgetPercent(); p != nil {
				out.RetryBudget.BudgetPercent = p.GetValue()
			}
			if n := rb.GetMinRetryConcurrency(); n != nil {
				out.RetryBudget.MinRetryConcurrency = n.GetValue()
			}
		}
		out.MaxConnections = th.GetMaxConnections().GetValue()
		out.MaxPendingRequests = th.GetMaxPendingRequests().GetValue()
		out.MaxRequests = th.GetMaxRequests().GetValue()
		out.MaxRetries = th.GetMaxRetries().GetValue()
	}
	if err := decodeClusterTransport(c, out); err != nil { // decode_mtls.go
		return nil, err
	}
	keys := make([]string, 0, len(c.GetTypedExtensionProtocolOptions()))
	for k := range c.GetTypedExtensionProtocolOptions() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != httpProtocolOptionsExt {
			return nil, fmt.Errorf("typed_extension_protocol_options[%q]: not supported", k)
		}
		if err := decodeHTTPProtocolOptions(c.GetTypedExtensionProtocolOptions()[k], out); err != nil {
			return nil, fmt.Errorf("typed_extension_protocol_options[%q].%w", k, err)
		}
	}
	decodeLBConfig(c, out)
	if od := c.GetOutlierDetection(); od != nil {
		out.OutlierDetection = decodeOutlierDetection(od)
	}
	if err := decodeClusterInfo(c.GetMetadata(), &out.Info); err != nil {
		return nil, fmt.Errorf("metadata.%w", err)
	}
	if la := c.GetLoadAssignment(); la != nil {
		if out.Type == resource.EDS {
			return nil, fmt.Errorf("load_assignment: not allowed on an EDS cluster")
		}
		eps, err := decodeEndpoints(la, out.Type != resource.Static)
		if err != nil {
			return nil, fmt.Errorf("load_assignment.%w", err)
		}
		out.LoadAssignment = eps
	}
	return out, nil
}

func decodeHTTPProtocolOptions(a *anypb.Any, out *resource.Cluster) error {
	var o httpupstreampb.HttpProtocolOptions
	if err := a.UnmarshalTo(&o); err != nil {
		return fmt.Errorf("%w", err)
	}
	if err := validate(&o); err != nil {
		return err
	}
	switch p := o.GetUpstreamProtocolOptions().(type) {
	case *httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_:
		switch p.ExplicitHttpConfig.GetProtocolConfig().(type) {
		case *httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions:
			out.Protocol = resource.HTTP1
		case *httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions:
			out.Protocol = resource.HTTP2
		default:
			return fmt.Errorf("explicit_http_config: only http_protocol_options and http2_protocol_options are supported")
		}
	case *httpupstreampb.HttpProtocolOptions_UseDownstreamProtocolConfig:
		if p.UseDownstreamProtocolConfig.GetHttp3ProtocolOptions() != nil {
			return fmt.Errorf("use_downstream_protocol_config.http3_protocol_options: not supported")
		}
		out.Protocol = resource.Downstream
	case nil:
	default:
		return fmt.Errorf("upstream_protocol_options: %T is not supported", p)
	}
	switch {
	case len(o.GetHttpFilters()) > 0:
		return fmt.Errorf("http_filters: not supported")
	case len(o.GetRequestMirrorPolicies()) > 0 || len(o.GetHashPolicy()) > 0 || o.GetRetryPolicy() != nil:
		return fmt.Errorf("upstream route policies: not supported")
	}
	if cp := o.GetCommonHttpProtocolOptions(); cp != nil {
		out.IdleTimeout = durationOr(cp.GetIdleTimeout(), defaultIdleTimeout)
		if cp.GetMaxRequestsPerConnection() != nil {
			out.MaxRequestsPerConnection = cp.GetMaxRequestsPerConnection().GetValue()
		}
		out.MaxConnectionDuration = durationOr(cp.GetMaxConnectionDuration(), 0)
	}
	var h2 *corepb.Http2ProtocolOptions
	switch p := o.GetUpstreamProtocolOptions().(type) {
	case *httpupstreampb.HttpProtocolOptions_ExplicitHttpConfig_:
		h2 = p.ExplicitHttpConfig.GetHttp2ProtocolOptions()
	case *httpupstreampb.HttpProtocolOptions_UseDownstreamProtocolConfig:
		h2 = p.UseDownstreamProtocolConfig.GetHttp2ProtocolOptions()
	}
	if n := h2.GetMaxConcurrentStreams(); n != nil {
		out.MaxConcurrentStreams = n.GetValue()
	}
	decodeHTTP2Keepalive(h2, out) // decode_keepalive.go
	return nil
}

// decodeLBConfig reads the panic threshold and the ring hash / Maglev sizes.
func decodeLBConfig(c *clusterpb.Cluster, out *resource.Cluster) {
	out.HealthyPanicThreshold = -1
	if p := c.GetCommonLbConfig().GetHealthyPanicThreshold(); p != nil {
		out.HealthyPanicThreshold = p.GetValue()
	}
	if n := c.GetRingHashLbConfig().GetMinimumRingSize(); n != nil {
		out.RingHashMinSize = n.GetValue()
	}
	if n := c.GetMaglevLbConfig().GetTableSize(); n != nil {
		out.MaglevTableSize = n.GetValue()
	}
}

// decodeOutlierDetection fills in Envoy's defaults (outlier_detection.proto).
func decodeOutlierDetection(od *clusterpb.OutlierDetection) *resource.OutlierDetection {
	u32 := func(v interface{ GetValue() uint32 }, isNil bool, def uint32) uint32 {
		if isNil {
			return def
		}
		return v.GetValue()
	}
	return &resource.OutlierDetection{
		Consecutive5xx:                         u32(od.GetConsecutive_5Xx(), od.GetConsecutive_5Xx() == nil, 5),
		EnforcingConsecutive5xx:                u32(od.GetEnforcingConsecutive_5Xx(), od.GetEnforcingConsecutive_5Xx() == nil, 100),
		ConsecutiveGatewayFailure:              u32(od.GetConsecutiveGatewayFailure(), od.GetConsecutiveGatewayFailure() == nil, 5),
		EnforcingConsecutiveGatewayFailure:     u32(od.GetEnforcingConsecutiveGatewayFailure(), od.GetEnforcingConsecutiveGatewayFailure() == nil, 0),
		ConsecutiveLocalOriginFailure:          u32(od.GetConsecutiveLocalOriginFailure(), od.GetConsecutiveLocalOriginFailure() == nil, 5),
		EnforcingConsecutiveLocalOriginFailure: u32(od.GetEnforcingConsecutiveLocalOriginFailure(), od.GetEnforcingConsecutiveLocalOriginFailure() == nil, 100),
		SplitExternalLocalOriginErrors:         od.GetSplitExternalLocalOriginErrors(),
		Interval:                               durationOr(od.GetInterval(), 10e9),
		BaseEjectionTime:                       durationOr(od.GetBaseEjectionTime(), 30e9),
		MaxEjectionTime:                        durationOr(od.GetMaxEjectionTime(), 300e9),
		MaxEjectionPercent:                     u32(od.GetMaxEjectionPercent(), od.GetMaxEjectionPercent() == nil, 10),
	}
}

// decodeClusterInfo reads filter_metadata["istio"] and ["lucid"].
func decodeClusterInfo(md *corepb.Metadata, info *resource.ClusterInfo) error {
	istio := filterMetadata(md, "istio")
	if svcs := istio["services"].GetListValue().GetValues(); len(svcs) > 0 {
		f := svcs[0].GetStructValue().GetFields()
		info.ServiceHost = stringField(f, "host")
		info.ServiceName = stringField(f, "name")
		info.ServiceNamespace = stringField(f, "namespace")
	}
	info.DestinationRule = stringField(istio, "config")
	info.Subset = stringField(istio, "subset")
	lucid := filterMetadata(md, "lucid")
	sel, err := stringMap(lucid["selector"])
	if err != nil {
		return fmt.Errorf("filter_metadata[\"lucid\"].selector: %w", err)
	}
	info.Selector = sel
	info.ServiceCluster = stringField(lucid, "service_cluster")
	return nil
}

// DecodeEndpoints validates and converts a ClusterLoadAssignment.
func DecodeEndpoints(cla *endpointpb.ClusterLoadAssignment) (*resource.Endpoints, error) {
	if err := validate(cla); err != nil {
		return nil, err
	}
	return decodeEndpoints(cla, false)
}

// decodeEndpoints converts a ClusterLoadAssignment; hostnames are allowed for DNS clusters.
func decodeEndpoints(cla *endpointpb.ClusterLoadAssignment, allowHostnames bool) (*resource.Endpoints, error) {
	if len(cla.GetNamedEndpoints()) > 0 {
		return nil, fmt.Errorf("named_endpoints: not supported")
	}
	if len(cla.GetPolicy().GetDropOverloads()) > 0 {
		return nil, fmt.Errorf("policy.drop_overloads: not supported")
	}
	out := &resource.Endpoints{ClusterName: cla.GetClusterName()}
	for i, lle := range cla.GetEndpoints() {
		if lle.GetLbConfig() != nil {
			return nil, fmt.Errorf("endpoints[%d].leds_cluster_locality_config: not supported", i)
		}
		locality := ""
		if l := lle.GetLocality(); l.GetRegion() != "" || l.GetZone() != "" || l.GetSubZone() != "" {
			locality = l.GetRegion() + "/" + l.GetZone() + "/" + l.GetSubZone()
		}
		for j, lbe := range lle.GetLbEndpoints() {
			ep, err := decodeLbEndpoint(lbe, allowHostnames)
			if err != nil {
				return nil, fmt.Errorf("endpoints[%d].lb_endpoints[%d].%w", i, j, err)
			}
			ep.Locality, ep.Priority = locality, lle.GetPriority()
			out.Endpoints = append(out.Endpoints, ep)
		}
	}
	return out, nil
}

func decodeLbEndpoint(lbe *endpointpb.LbEndpoint, allowHostnames bool) (resource.Endpoint, error) {
	var out resource.Endpoint
	e := lbe.GetEndpoint()
	if e == nil {
		return out, fmt.Errorf("endpoint: required (endpoint_name is not supported)")
	}
	sa := e.GetAddress().GetSocketAddress()
	if sa == nil {
		return out, fmt.Errorf("endpoint.address.socket_address: required")
	}
	port, ok := sa.GetPortSpecifier().(*corepb.SocketAddress_PortValue)
	if !ok || port.PortValue > 65535 {
		return out, fmt.Errorf("endpoint.address.socket_address.port_value: required, 0..65535")
	}
	out.Port = port.PortValue
	if ip, err := netip.ParseAddr(sa.GetAddress()); err == nil {
		out.Address = netip.AddrPortFrom(ip, uint16(port.PortValue))
	} else if allowHostnames {
		out.Hostname = sa.GetAddress()
	} else {
		return out, fmt.Errorf("endpoint.address.socket_address.address: %q is not an IP address", sa.GetAddress())
	}
	switch lbe.GetHealthStatus() {
	case corepb.HealthStatus_UNKNOWN:
		out.Health = resource.HealthUnknown
	case corepb.HealthStatus_HEALTHY:
		out.Health = resource.Healthy
	case corepb.HealthStatus_UNHEALTHY:
		out.Health = resource.Unhealthy
	case corepb.HealthStatus_DRAINING:
		out.Health = resource.Draining
	case corepb.HealthStatus_TIMEOUT:
		out.Health = resource.Timeout
	case corepb.HealthStatus_DEGRADED:
		out.Health = resource.Degraded
	default:
		return out, fmt.Errorf("health_status: %s is not supported", lbe.GetHealthStatus())
	}
	out.Weight = 1
	if w := lbe.GetLoadBalancingWeight(); w != nil {
		out.Weight = w.GetValue()
	}
	out.Workload = stringField(filterMetadata(lbe.GetMetadata(), "istio"), "workload")
	labels, err := stringMap(filterMetadata(lbe.GetMetadata(), "lucid")["labels"])
	if err != nil {
		return out, fmt.Errorf("metadata.filter_metadata[\"lucid\"].labels: %w", err)
	}
	out.Labels = labels
	if err := decodeEndpointTransport(lbe, &out); err != nil { // decode_mtls.go
		return out, err
	}
	return out, nil
}
