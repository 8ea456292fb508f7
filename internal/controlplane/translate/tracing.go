package translate

import (
	"cmp"
	"maps"
	"slices"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tracepb "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uuidpb "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	tracingtypepb "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Tracer names Istio puts in HttpConnectionManager.tracing.provider.
const (
	OpenTelemetryTracer = "envoy.tracers.opentelemetry"
	ZipkinTracer        = "envoy.tracers.zipkin"
)

// addTracing sets Istio's tracing block on every HTTP connection manager of listeners
// when the proxy has a tracing provider (model.Mesh.TracingFor: the mesh config's, refined
// by Telemetry resources). The block is the same for every proxy of a class (Telemetry
// selectors split classes; the span's service name is the proxy's own), so listeners
// shared by a class of proxies stay shared.
func (g *generator) addTracing(listeners []proto.Message) {
	client, server := g.tracingConfig(model.TraceClient), g.tracingConfig(model.TraceServer)
	if client == nil && server == nil {
		return
	}
	clientRID, serverRID := g.requestIDExtension(model.TraceClient), g.requestIDExtension(model.TraceServer)
	g.eachHCM(listeners, func(inbound bool, h *hcmpb.HttpConnectionManager) bool {
		t, rid := client, clientRID
		if inbound {
			t, rid = server, serverRID
		}
		if t == nil {
			return false
		}
		h.Tracing, h.RequestIdExtension = t, rid
		return true
	})
}

// requestIDExtension is the connection manager's request_id_extension when a Telemetry
// resource turns useRequestIdForTraceSampling off for the side (Envoy's UUID request ids
// with use_request_id_for_trace_sampling false, as istiod writes it); nil otherwise
// (Envoy's default uses the request id).
func (g *generator) requestIDExtension(mode model.TraceMode) *hcmpb.RequestIDExtension {
	if t := g.m.TracingFor(g.p, mode); t == nil || !t.IgnoreRequestID {
		return nil
	}
	return &hcmpb.RequestIDExtension{TypedConfig: mustAny(&uuidpb.UuidRequestIdConfig{
		PackTraceReason: wrapperspb.Bool(true), UseRequestIdForTraceSampling: wrapperspb.Bool(false)})}
}

// eachHCM calls set with every HTTP connection manager of listeners and whether its
// listener is the proxy's server side (Istio's listener classes: a sidecar's inbound side
// is the server, its outbound side and a gateway the client); what set changes is
// written back when it returns true.
func (g *generator) eachHCM(listeners []proto.Message, set func(inbound bool, h *hcmpb.HttpConnectionManager) bool) {
	eachFilter(g, listeners, hcmTypeURL, func() *hcmpb.HttpConnectionManager { return &hcmpb.HttpConnectionManager{} }, set)
}

// eachFilter calls set with every network filter of listeners whose typed_config is
// typeURL, decoded into a fresh newT(), and whether its listener is the proxy's server
// side (as eachHCM); what set changes is written back when it returns true.
func eachFilter[T proto.Message](g *generator, listeners []proto.Message, typeURL string, newT func() T, set func(inbound bool, t T) bool) {
	for _, m := range listeners {
		l, ok := m.(*listenerpb.Listener)
		if !ok {
			continue
		}
		inbound := l.GetTrafficDirection() == corepb.TrafficDirection_INBOUND && g.p.Type != model.ProxyRouter
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(slices.Clip(chains), l.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				if f.GetTypedConfig().GetTypeUrl() != typeURL {
					continue
				}
				t := newT()
				if f.GetTypedConfig().UnmarshalTo(t) != nil {
					continue
				}
				if set(inbound, t) {
					f.ConfigType = &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(t)}
				}
			}
		}
	}
}

const (
	hcmTypeURL      = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	tcpProxyTypeURL = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
)

// tracingConfig is Istio's HttpConnectionManager.tracing for the proxy's provider: random
// sampling from Telemetry or meshConfig.defaultConfig.tracing.sampling, client and overall sampling
// 100 %, the provider's collector as its outbound cluster. nil: no tracing.
func (g *generator) tracingConfig(mode model.TraceMode) *hcmpb.HttpConnectionManager_Tracing {
	t := g.m.TracingFor(g.p, mode)
	if t == nil {
		return nil
	}
	cluster := ClusterName("outbound", t.Port, "", t.Service.Host)
	out := &hcmpb.HttpConnectionManager_Tracing{
		ClientSampling:  &typepb.Percent{Value: 100},
		RandomSampling:  &typepb.Percent{Value: t.Sampling},
		OverallSampling: &typepb.Percent{Value: 100},
		CustomTags:      customTags(t),
	}
	maxTag := t.MaxPathTagLength
	switch p := t.Provider; {
	case p.GetOpentelemetry() != nil:
		o := p.GetOpentelemetry()
		maxTag = cmp.Or(maxTag, o.GetMaxTagLength())
		c := &tracepb.OpenTelemetryConfig{}
		if hs := o.GetHttp(); hs != nil {
			path := cmp.Or(hs.GetPath(), "/v1/traces")
			if path[0] != '/' {
				path = "/" + path
			}
			c.HttpService = &corepb.HttpService{HttpUri: &corepb.HttpUri{
				Uri:              "http://" + t.Service.Host + ":" + itoa(t.Port) + path,
				HttpUpstreamType: &corepb.HttpUri_Cluster{Cluster: cluster},
				Timeout:          cmp.Or(hs.GetTimeout(), durationpb.New(2e9)),
			}}
		} else {
			c.GrpcService = &corepb.GrpcService{TargetSpecifier: &corepb.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corepb.GrpcService_EnvoyGrpc{
				ClusterName: cluster, Authority: t.Service.Host,
			}}}
		}
		out.Provider = &tracepb.Tracing_Http{Name: OpenTelemetryTracer, ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: mustAny(c)}}
	case p.GetZipkin() != nil:
		z := p.GetZipkin()
		maxTag = cmp.Or(maxTag, z.GetMaxTagLength())
		c := &tracepb.ZipkinConfig{
			CollectorCluster:         cluster,
			CollectorEndpoint:        cmp.Or(z.GetPath(), "/api/v2/spans"),
			CollectorEndpointVersion: tracepb.ZipkinConfig_HTTP_JSON,
			TraceId_128Bit:           !z.GetEnable_64BitTraceId(),
			SharedSpanContext:        wrapperspb.Bool(false),
			CollectorHostname:        t.Service.Host,
		}
		out.Provider = &tracepb.Tracing_Http{Name: ZipkinTracer, ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: mustAny(c)}}
	default:
		return nil
	}
	if maxTag > 0 {
		out.MaxPathTagLength = wrapperspb.UInt32(maxTag)
	}
	return out
}

// customTags are the custom tags (meshConfig.defaultConfig.tracing.customTags, a
// Telemetry resource's), sorted by name; a formatter tag is Envoy's value tag.
func customTags(t *model.Tracing) []*tracingtypepb.CustomTag {
	var out []*tracingtypepb.CustomTag
	names := slices.Concat(slices.Collect(maps.Keys(t.CustomTags)), slices.Collect(maps.Keys(t.FormatterTags)))
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		ct := t.CustomTags[name]
		tag := &tracingtypepb.CustomTag{Tag: name}
		switch {
		case ct == nil:
			tag.Type = &tracingtypepb.CustomTag_Value{Value: t.FormatterTags[name]}
		case ct.GetLiteral() != nil:
			tag.Type = &tracingtypepb.CustomTag_Literal_{Literal: &tracingtypepb.CustomTag_Literal{Value: ct.GetLiteral().GetValue()}}
		case ct.GetHeader() != nil:
			tag.Type = &tracingtypepb.CustomTag_RequestHeader{RequestHeader: &tracingtypepb.CustomTag_Header{
				Name: ct.GetHeader().GetName(), DefaultValue: ct.GetHeader().GetDefaultValue()}}
		case ct.GetEnvironment() != nil:
			tag.Type = &tracingtypepb.CustomTag_Environment_{Environment: &tracingtypepb.CustomTag_Environment{
				Name: ct.GetEnvironment().GetName(), DefaultValue: ct.GetEnvironment().GetDefaultValue()}}
		default:
			continue
		}
		out = append(out, tag)
	}
	return out
}
