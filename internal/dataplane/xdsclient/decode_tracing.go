package xdsclient

import (
	"fmt"
	"net/url"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracepb "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uuidpb "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// The tracers Lucid runs (Tracing.provider.name and its typed_config).
const (
	openTelemetryTracer = "envoy.tracers.opentelemetry"
	zipkinTracer        = "envoy.tracers.zipkin"
	openTelemetryURL    = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
	zipkinURL           = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
)

// decodeTracing reads an HTTP connection manager's tracing block; nil when it has none
// (no spans). A block without a provider is refused: Envoy would decide and propagate
// but have nowhere to send spans, and Lucid has no static tracer to fall back on.
func decodeTracing(t *hcmpb.HttpConnectionManager_Tracing) (*resource.Tracing, error) {
	if t == nil {
		return nil, nil
	}
	out := &resource.Tracing{
		RandomSampling:  percentOr(t.GetRandomSampling(), 100),
		ClientSampling:  percentOr(t.GetClientSampling(), 100),
		OverallSampling: percentOr(t.GetOverallSampling(), 100),
	}
	if v := t.GetMaxPathTagLength(); v != nil {
		out.MaxPathTagLength = int(v.GetValue())
	}
	for i, ct := range t.GetCustomTags() {
		tag := resource.TracingTag{Name: ct.GetTag()}
		switch {
		case ct.GetLiteral() != nil:
			tag.Literal = ct.GetLiteral().GetValue()
		case ct.GetRequestHeader() != nil:
			tag.Header, tag.Default = ct.GetRequestHeader().GetName(), ct.GetRequestHeader().GetDefaultValue()
		case ct.GetEnvironment() != nil:
			tag.Env, tag.Default = ct.GetEnvironment().GetName(), ct.GetEnvironment().GetDefaultValue()
		case ct.GetValue() != "":
			parts, err := logformat.Parse(ct.GetValue())
			if err != nil {
				return nil, fmt.Errorf("custom_tags[%d].value: %w", i, err)
			}
			tag.Format = parts
		default:
			continue // metadata tags: nothing in Lucid's request record to read them from
		}
		if tag.Name == "" {
			return nil, fmt.Errorf("custom_tags[%d].tag: required", i)
		}
		out.CustomTags = append(out.CustomTags, tag)
	}
	p := t.GetProvider()
	if p == nil {
		return nil, fmt.Errorf("provider: required (Lucid has no static tracer)")
	}
	name, typ := p.GetName(), p.GetTypedConfig().GetTypeUrl()
	switch {
	case name == openTelemetryTracer || typ == openTelemetryURL:
		var c tracepb.OpenTelemetryConfig
		if err := p.GetTypedConfig().UnmarshalTo(&c); err != nil {
			return nil, fmt.Errorf("provider.typed_config: %w", err)
		}
		out.Provider = resource.TracingProvider{Kind: "opentelemetry", ServiceName: c.GetServiceName()}
		switch {
		case c.GetGrpcService() != nil:
			g := c.GetGrpcService().GetEnvoyGrpc()
			if g.GetClusterName() == "" {
				return nil, fmt.Errorf("provider.typed_config.grpc_service.envoy_grpc.cluster_name: required")
			}
			out.Provider.Cluster, out.Provider.Authority = g.GetClusterName(), g.GetAuthority()
		case c.GetHttpService() != nil:
			if err := httpCollector(&out.Provider, c.GetHttpService().GetHttpUri()); err != nil {
				return nil, fmt.Errorf("provider.typed_config.http_service.http_uri.%w", err)
			}
		default:
			return nil, fmt.Errorf("provider.typed_config: grpc_service or http_service required")
		}
	case name == zipkinTracer || typ == zipkinURL:
		var c tracepb.ZipkinConfig
		if err := p.GetTypedConfig().UnmarshalTo(&c); err != nil {
			return nil, fmt.Errorf("provider.typed_config: %w", err)
		}
		if c.GetCollectorCluster() == "" {
			return nil, fmt.Errorf("provider.typed_config.collector_cluster: required")
		}
		if v := c.GetCollectorEndpointVersion(); v != tracepb.ZipkinConfig_HTTP_JSON {
			return nil, fmt.Errorf("provider.typed_config.collector_endpoint_version: %s is not supported (HTTP_JSON is)", v)
		}
		out.Provider = resource.TracingProvider{Kind: "zipkin", Cluster: c.GetCollectorCluster(),
			Authority: c.GetCollectorHostname(), HTTPPath: c.GetCollectorEndpoint()}
		if out.Provider.HTTPPath == "" {
			out.Provider.HTTPPath = "/api/v2/spans"
		}
	default:
		return nil, fmt.Errorf("provider: tracer %q is not supported (envoy.tracers.opentelemetry and envoy.tracers.zipkin are)", name)
	}
	return out, nil
}

// httpCollector reads an OTLP/HTTP collector's http_uri: the cluster to send to, the
// path and the Host.
func httpCollector(p *resource.TracingProvider, u *corepb.HttpUri) error {
	if u.GetCluster() == "" {
		return fmt.Errorf("cluster: required")
	}
	parsed, err := url.Parse(u.GetUri())
	if err != nil || parsed.Host == "" {
		return fmt.Errorf("uri: %q is not an absolute URL", u.GetUri())
	}
	p.Cluster, p.Authority, p.HTTPPath = u.GetCluster(), parsed.Host, parsed.EscapedPath()
	if p.HTTPPath == "" {
		p.HTTPPath = "/v1/traces"
	}
	return nil
}

// percentOr is a Percent's value, def when unset.
func percentOr(p *typepb.Percent, def float64) float64 {
	if p == nil {
		return def
	}
	return p.GetValue()
}

const uuidRequestIDURL = "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"

// decodeRequestIDExtension reads the connection manager's request_id_extension, as
// istiod writes a Telemetry's useRequestIdForTraceSampling: Envoy's UUID request ids, with
// use_request_id_for_trace_sampling (default true) applied to the tracing block. Another
// request id extension is refused.
func decodeRequestIDExtension(out *resource.HTTPManager, ext *hcmpb.RequestIDExtension) error {
	if ext == nil {
		return nil
	}
	if ext.GetTypedConfig().GetTypeUrl() != uuidRequestIDURL {
		return fmt.Errorf("typed_config: %s is not supported (envoy.request_id.uuid is)", ext.GetTypedConfig().GetTypeUrl())
	}
	var u uuidpb.UuidRequestIdConfig
	if err := ext.GetTypedConfig().UnmarshalTo(&u); err != nil {
		return fmt.Errorf("typed_config: %w", err)
	}
	if v := u.GetUseRequestIdForTraceSampling(); v != nil && !v.GetValue() && out.Tracing != nil {
		out.Tracing.IgnoreRequestID = true
	}
	return nil
}
