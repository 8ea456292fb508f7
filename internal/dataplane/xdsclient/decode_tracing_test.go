package xdsclient

import (
	"reflect"
	"strings"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tracepb "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uuidpb "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	tracingtypepb "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typepb "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func tracerAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func otelGRPCTracing(t testing.TB) *hcmpb.HttpConnectionManager_Tracing {
	t.Helper()
	return &hcmpb.HttpConnectionManager_Tracing{
		RandomSampling: &typepb.Percent{Value: 1},
		CustomTags: []*tracingtypepb.CustomTag{
			{Tag: "team", Type: &tracingtypepb.CustomTag_Literal_{Literal: &tracingtypepb.CustomTag_Literal{Value: "books"}}},
			{Tag: "user", Type: &tracingtypepb.CustomTag_RequestHeader{RequestHeader: &tracingtypepb.CustomTag_Header{Name: "x-user", DefaultValue: "anon"}}},
			{Tag: "sni", Type: &tracingtypepb.CustomTag_Value{Value: "%REQUESTED_SERVER_NAME%"}},
		},
		MaxPathTagLength: wrapperspb.UInt32(100),
		Provider: &tracepb.Tracing_Http{Name: openTelemetryTracer, ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.OpenTelemetryConfig{
			GrpcService: &corepb.GrpcService{TargetSpecifier: &corepb.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corepb.GrpcService_EnvoyGrpc{
				ClusterName: "outbound|4317||otel.observability.svc.cluster.local", Authority: "otel.observability.svc.cluster.local"}}},
			ServiceName: "productpage.default",
		})}},
	}
}

func TestDecodeTracing(t *testing.T) {
	got, err := decodeTracing(otelGRPCTracing(t))
	if err != nil {
		t.Fatal(err)
	}
	want := &resource.Tracing{
		Provider: resource.TracingProvider{Kind: "opentelemetry", Cluster: "outbound|4317||otel.observability.svc.cluster.local",
			Authority: "otel.observability.svc.cluster.local", ServiceName: "productpage.default"},
		RandomSampling: 1, ClientSampling: 100, OverallSampling: 100, MaxPathTagLength: 100,
		CustomTags: []resource.TracingTag{{Name: "team", Literal: "books"}, {Name: "user", Header: "x-user", Default: "anon"},
			{Name: "sni", Format: []logformat.Part{{Op: "REQUESTED_SERVER_NAME"}}}},
	}
	if !equalTracing(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	httpOTel := &hcmpb.HttpConnectionManager_Tracing{Provider: &tracepb.Tracing_Http{Name: openTelemetryTracer,
		ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.OpenTelemetryConfig{HttpService: &corepb.HttpService{
			HttpUri: &corepb.HttpUri{Uri: "http://otel.observability.svc.cluster.local:4318/v1/traces",
				HttpUpstreamType: &corepb.HttpUri_Cluster{Cluster: "outbound|4318||otel.observability.svc.cluster.local"}}}})}}}
	got, err = decodeTracing(httpOTel)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Provider; p.Cluster != "outbound|4318||otel.observability.svc.cluster.local" || p.HTTPPath != "/v1/traces" || got.RandomSampling != 100 {
		t.Fatalf("OTLP/HTTP: got %+v", got)
	}

	zipkin := &hcmpb.HttpConnectionManager_Tracing{Provider: &tracepb.Tracing_Http{Name: zipkinTracer,
		ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.ZipkinConfig{
			CollectorCluster: "outbound|9411||zipkin.istio-system.svc.cluster.local", CollectorEndpoint: "/api/v2/spans",
			CollectorEndpointVersion: tracepb.ZipkinConfig_HTTP_JSON})}}}
	got, err = decodeTracing(zipkin)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Provider; p.Kind != "zipkin" || p.Cluster != "outbound|9411||zipkin.istio-system.svc.cluster.local" || p.HTTPPath != "/api/v2/spans" {
		t.Fatalf("zipkin: got %+v", got)
	}

	if got, err := decodeTracing(nil); got != nil || err != nil {
		t.Fatalf("no tracing block: got %+v, %v", got, err)
	}
}

func equalTracing(a, b *resource.Tracing) bool {
	if a.Provider != b.Provider || a.RandomSampling != b.RandomSampling || a.ClientSampling != b.ClientSampling ||
		a.OverallSampling != b.OverallSampling || a.MaxPathTagLength != b.MaxPathTagLength || len(a.CustomTags) != len(b.CustomTags) {
		return false
	}
	return reflect.DeepEqual(a.CustomTags, b.CustomTags)
}

// A tracing block Lucid cannot run is NACKed with the field that is wrong.
func TestDecodeTracingRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *hcmpb.HttpConnectionManager_Tracing
		want string
	}{
		{"no provider", &hcmpb.HttpConnectionManager_Tracing{}, "provider: required"},
		{"unknown tracer", &hcmpb.HttpConnectionManager_Tracing{Provider: &tracepb.Tracing_Http{Name: "envoy.tracers.datadog",
			ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.DatadogConfig{CollectorCluster: "dd", ServiceName: "x"})}}},
			`tracer "envoy.tracers.datadog" is not supported`},
		{"zipkin without cluster", &hcmpb.HttpConnectionManager_Tracing{Provider: &tracepb.Tracing_Http{Name: zipkinTracer,
			ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.ZipkinConfig{CollectorEndpointVersion: tracepb.ZipkinConfig_HTTP_JSON})}}},
			"collector_cluster: required"},
		{"zipkin proto", &hcmpb.HttpConnectionManager_Tracing{Provider: &tracepb.Tracing_Http{Name: zipkinTracer,
			ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.ZipkinConfig{CollectorCluster: "z", CollectorEndpointVersion: tracepb.ZipkinConfig_HTTP_PROTO})}}},
			"HTTP_PROTO is not supported"},
		{"a formatter tag Lucid cannot format", &hcmpb.HttpConnectionManager_Tracing{CustomTags: []*tracingtypepb.CustomTag{
			{Tag: "md", Type: &tracingtypepb.CustomTag_Value{Value: "%DYNAMIC_METADATA(istio)%"}}}},
			"custom_tags[0].value: 1: %DYNAMIC_METADATA(istio)%: operator DYNAMIC_METADATA is not one Lucid formats"},
		{"otel without a service", &hcmpb.HttpConnectionManager_Tracing{Provider: &tracepb.Tracing_Http{Name: openTelemetryTracer,
			ConfigType: &tracepb.Tracing_Http_TypedConfig{TypedConfig: tracerAny(t, &tracepb.OpenTelemetryConfig{})}}},
			"grpc_service or http_service required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeTracing(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Through the listener decoder, the NACK names the HCM's tracing field.
	_, err := decodeHCM(tracerAny(t, &hcmpb.HttpConnectionManager{
		StatPrefix:     "outbound_0.0.0.0_9080",
		RouteSpecifier: &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{RouteConfigName: "9080"}},
		HttpFilters:    []*hcmpb.HttpFilter{{Name: routerFilterName}},
		Tracing:        &hcmpb.HttpConnectionManager_Tracing{},
	}))
	if err == nil || !strings.HasPrefix(err.Error(), "tracing.provider: required") {
		t.Fatalf("got %v, want tracing.provider: required", err)
	}
}

func FuzzDecodeTracing(f *testing.F) {
	b, _ := proto.Marshal(otelGRPCTracing(f))
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m hcmpb.HttpConnectionManager_Tracing
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		_, _ = decodeTracing(&m)
	})
}

// TestDecodeRequestIDExtension: Envoy's UUID request ids with
// use_request_id_for_trace_sampling false (a Telemetry's useRequestIdForTraceSampling:
// false) reach the tracing settings; another request id extension is NACKed.
func TestDecodeRequestIDExtension(t *testing.T) {
	hcm := func(ext *hcmpb.RequestIDExtension) *anypb.Any {
		return tracerAny(t, &hcmpb.HttpConnectionManager{
			StatPrefix:         "outbound_0.0.0.0_9080",
			RouteSpecifier:     &hcmpb.HttpConnectionManager_Rds{Rds: &hcmpb.Rds{RouteConfigName: "9080"}},
			HttpFilters:        []*hcmpb.HttpFilter{{Name: routerFilterName}},
			Tracing:            otelGRPCTracing(t),
			RequestIdExtension: ext,
		})
	}
	uuid := func(use bool) *hcmpb.RequestIDExtension {
		return &hcmpb.RequestIDExtension{TypedConfig: tracerAny(t, &uuidpb.UuidRequestIdConfig{UseRequestIdForTraceSampling: wrapperspb.Bool(use)})}
	}
	for _, tc := range []struct {
		ext  *hcmpb.RequestIDExtension
		want bool
	}{{nil, false}, {uuid(true), false}, {uuid(false), true}} {
		h, err := decodeHCM(hcm(tc.ext))
		if err != nil {
			t.Fatal(err)
		}
		if h.Tracing.IgnoreRequestID != tc.want {
			t.Errorf("request_id_extension %v: IgnoreRequestID %v, want %v", tc.ext, h.Tracing.IgnoreRequestID, tc.want)
		}
	}
	_, err := decodeHCM(hcm(&hcmpb.RequestIDExtension{TypedConfig: tracerAny(t, &typepb.Percent{Value: 1})}))
	if err == nil || !strings.HasPrefix(err.Error(), "request_id_extension.typed_config: type.googleapis.com/envoy.type.v3.Percent is not supported") {
		t.Fatalf("another extension: %v", err)
	}
}
