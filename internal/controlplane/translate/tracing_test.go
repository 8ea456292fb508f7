package translate

import (
	"strings"
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tracepb "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	uuidpb "github.com/envoyproxy/go-control-plane/envoy/extensions/request_id/uuid/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

const collectorEntry = `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: otel, namespace: observability}
spec:
  hosts: [otel.observability.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 4317, name: grpc, protocol: GRPC}, {number: 9411, name: http-zipkin, protocol: HTTP}]
  endpoints: [{address: 127.0.123.9}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: istio-ingressgateway, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.0.1, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
`

func meshConfig(t *testing.T, y string) *meshv1alpha1.MeshConfig {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	mc := &meshv1alpha1.MeshConfig{}
	if err := protojson.Unmarshal(js, mc); err != nil {
		t.Fatal(err)
	}
	mc.EnableTracing = config.DefaultMeshConfig().GetEnableTracing()
	return mc
}

// hcmTracing returns the tracing block of every HTTP connection manager in listeners.
func hcmTracing(t *testing.T, res *Resources) []*hcmpb.HttpConnectionManager_Tracing {
	t.Helper()
	var out []*hcmpb.HttpConnectionManager_Tracing
	for _, lh := range hcmsOf(t, res) {
		out = append(out, lh.h.GetTracing())
	}
	return out
}

// The mesh config's default tracing provider reaches every HTTP connection manager of a
// sidecar (inbound and outbound) and a gateway, with Istio's sampling and the provider's
// collector as its outbound cluster.
func TestTracingFromMeshConfig(t *testing.T) {
	objs := loadObjects(t, "_base.yaml", append(baseObjects(t), collectorEntry...))
	for _, tc := range []struct {
		name, mesh string
		check      func(t *testing.T, tr *hcmpb.HttpConnectionManager_Tracing)
	}{
		{"opentelemetry grpc", `
defaultConfig: {tracing: {sampling: 10, customTags: {team: {literal: {value: books}}}}}
extensionProviders: [{name: otel, opentelemetry: {service: observability/otel.observability.svc.cluster.local, port: 4317}}]
defaultProviders: {tracing: [otel]}`, func(t *testing.T, tr *hcmpb.HttpConnectionManager_Tracing) {
			t.Helper()
			var c tracepb.OpenTelemetryConfig
			if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(&c); err != nil {
				t.Fatal(err)
			}
			if tr.GetProvider().GetName() != OpenTelemetryTracer || c.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "outbound|4317||otel.observability.svc.cluster.local" ||
				tr.GetRandomSampling().GetValue() != 10 || tr.GetClientSampling().GetValue() != 100 || tr.GetOverallSampling().GetValue() != 100 ||
				len(tr.GetCustomTags()) != 1 || tr.GetCustomTags()[0].GetLiteral().GetValue() != "books" {
				t.Fatalf("tracing: %v", tr)
			}
		}},
		{"opentelemetry http, default sampling", `
extensionProviders: [{name: otel, opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317, http: {path: v1/traces}}}]
defaultProviders: {tracing: [otel]}`, func(t *testing.T, tr *hcmpb.HttpConnectionManager_Tracing) {
			t.Helper()
			var c tracepb.OpenTelemetryConfig
			if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(&c); err != nil {
				t.Fatal(err)
			}
			if u := c.GetHttpService().GetHttpUri(); u.GetUri() != "http://otel.observability.svc.cluster.local:4317/v1/traces" ||
				u.GetCluster() != "outbound|4317||otel.observability.svc.cluster.local" || tr.GetRandomSampling().GetValue() != 1 {
				t.Fatalf("tracing: %v", tr)
			}
		}},
		{"zipkin, sampling over 100 is Istio's default", `
defaultConfig: {tracing: {sampling: 150}}
extensionProviders: [{name: zipkin, zipkin: {service: otel.observability.svc.cluster.local, port: 9411}}]
defaultProviders: {tracing: [zipkin]}`, func(t *testing.T, tr *hcmpb.HttpConnectionManager_Tracing) {
			t.Helper()
			var c tracepb.ZipkinConfig
			if err := tr.GetProvider().GetTypedConfig().UnmarshalTo(&c); err != nil {
				t.Fatal(err)
			}
			if tr.GetProvider().GetName() != ZipkinTracer || c.GetCollectorCluster() != "outbound|9411||otel.observability.svc.cluster.local" ||
				c.GetCollectorEndpoint() != "/api/v2/spans" || !c.GetTraceId_128Bit() || tr.GetRandomSampling().GetValue() != 1 {
				t.Fatalf("tracing: %v", tr)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, diags := model.Build(objs, meshConfig(t, tc.mesh))
			for _, d := range diags {
				t.Errorf("unexpected warning: %s", d)
			}
			for _, id := range []string{productpage, "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"} {
				trs := hcmTracing(t, Generate(m, proxy(t, id)))
				if len(trs) == 0 {
					t.Fatalf("%s: no HTTP connection manager", id)
				}
				for _, tr := range trs {
					if tr == nil {
						t.Fatalf("%s: an HTTP connection manager without tracing", id)
					}
					tc.check(t, tr)
				}
			}
		})
	}
}

// Without a usable provider nothing traces, and the mesh config's mistake is a warning
// that names the field.
func TestTracingProviderProblems(t *testing.T) {
	objs := loadObjects(t, "_base.yaml", append(baseObjects(t), collectorEntry...))
	for _, tc := range []struct{ name, mesh, want string }{
		{"none", `extensionProviders: [{name: otel, opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317}}]`, ""},
		{"undefined", `defaultProviders: {tracing: [otel]}`, `defaultProviders.tracing[0]: provider "otel" is not defined`},
		{"unknown service", `
extensionProviders: [{name: otel, opentelemetry: {service: jaeger.observability.svc.cluster.local, port: 4317}}]
defaultProviders: {tracing: [otel]}`, `extensionProviders[0].service: service "jaeger.observability.svc.cluster.local" of tracing provider "otel" is not in the registry`},
		{"wrong port", `
extensionProviders: [{name: otel, opentelemetry: {service: otel.observability.svc.cluster.local, port: 4318}}]
defaultProviders: {tracing: [otel]}`, `extensionProviders[0].port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, diags := model.Build(objs, meshConfig(t, tc.mesh))
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
				t.Fatalf("warnings %q, want one containing %q", got, tc.want)
			}
			for _, tr := range hcmTracing(t, Generate(m, proxy(t, productpage))) {
				if tr != nil {
					t.Fatalf("tracing without a usable provider: %v", tr)
				}
			}
		})
	}
}

const telemetryObjects = `
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing: [{randomSamplingPercentage: 20}]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: reviews, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  tracing:
  - providers: [{name: zipkin}]
    randomSamplingPercentage: 50
    customTags: {team: {literal: {value: reviews-team}}, outcome: {formatter: {value: "%RESPONSE_CODE% %UPSTREAM_HOST%"}}}
    useRequestIdForTraceSampling: false
`

// Telemetry resources refine the mesh config's tracing per namespace and workload
// (root namespace, then the proxy's namespace, then those selecting it), and proxies of
// one class that a Telemetry selector tells apart get their own listeners.
func TestTracingFromTelemetry(t *testing.T) {
	objs := loadObjects(t, "_base.yaml", append(baseObjects(t), collectorEntry+telemetryObjects...))
	mesh := meshConfig(t, `
defaultConfig: {tracing: {sampling: 10}}
extensionProviders:
- {name: otel, opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317}}
- {name: zipkin, zipkin: {service: otel.observability.svc.cluster.local, port: 9411}}
defaultProviders: {tracing: [otel]}`)
	m, diags := model.Build(objs, mesh)
	for _, d := range diags {
		t.Errorf("unexpected warning: %s", d)
	}
	const reviews = "sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local"
	var cache Cache
	for _, tc := range []struct {
		id       string
		tracer   string
		sampling float64
		tag      string
		noRID    bool // request_id_extension: the request id not used for sampling
	}{
		{productpage, OpenTelemetryTracer, 20, "", false},
		{reviews, ZipkinTracer, 50, "outcome=%RESPONSE_CODE% %UPSTREAM_HOST% team=reviews-team", true}, // a formatter tag is Envoy's value tag
	} {
		want := Generate(m, proxy(t, tc.id))
		got := cache.Generate(m, proxy(t, tc.id))
		for i := range want.Listeners {
			if !proto.Equal(got.Listeners[i], want.Listeners[i]) {
				t.Fatalf("%s: cached listener %s differs from Generate's", tc.id, resourceName(want.Listeners[i]))
			}
		}
		for _, tr := range hcmTracing(t, want) {
			var tags []string
			for _, ct := range tr.GetCustomTags() {
				tags = append(tags, ct.GetTag()+"="+ct.GetLiteral().GetValue()+ct.GetValue())
			}
			tag := strings.Join(tags, " ")
			if tr.GetProvider().GetName() != tc.tracer || tr.GetRandomSampling().GetValue() != tc.sampling || tag != tc.tag {
				t.Fatalf("%s: tracing %v, want %s at %v%% tagged %q", tc.id, tr, tc.tracer, tc.sampling, tc.tag)
			}
		}
		for _, lh := range hcmsOf(t, want) {
			var u uuidpb.UuidRequestIdConfig
			ext := lh.h.GetRequestIdExtension()
			if (ext != nil) != tc.noRID || ext != nil && (ext.GetTypedConfig().UnmarshalTo(&u) != nil || u.GetUseRequestIdForTraceSampling().GetValue()) {
				t.Fatalf("%s: request_id_extension %v, want the request id not used for sampling: %v", tc.id, ext, tc.noRID)
			}
		}
	}

	// Without a default provider only the workloads a Telemetry names one for trace; a
	// Telemetry naming an undefined provider is a warning and changes nothing.
	mesh.DefaultProviders = nil
	bad := strings.ReplaceAll(telemetryObjects, "name: mesh-default, namespace: istio-system}\nspec:\n  tracing: [{randomSamplingPercentage: 20}]",
		"name: mesh-default, namespace: istio-system}\nspec:\n  tracing: [{providers: [{name: jaeger}]}]")
	m, diags = model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), collectorEntry+bad...)), mesh)
	if len(diags) != 1 || !strings.Contains(diags[0].String(), `spec.tracing[0].providers[0].name: provider "jaeger" is not defined in extensionProviders`) {
		t.Fatalf("warnings %v", diags)
	}
	for _, tr := range hcmTracing(t, Generate(m, proxy(t, productpage))) {
		if tr != nil {
			t.Fatalf("productpage traces without a provider: %v", tr)
		}
	}
	for _, tr := range hcmTracing(t, Generate(m, proxy(t, reviews))) {
		if tr.GetProvider().GetName() != ZipkinTracer {
			t.Fatalf("reviews: %v", tr)
		}
	}
}

// tracingByDirection returns the tracing of a proxy's inbound (virtualInbound) and
// outbound connection managers.
func tracingByDirection(t *testing.T, res *Resources) (in, out []*hcmpb.HttpConnectionManager_Tracing) {
	t.Helper()
	for _, m := range res.Listeners {
		l := m.(*listenerpb.Listener)
		trs := hcmTracing(t, &Resources{Listeners: []proto.Message{l}})
		if l.GetName() == "virtualInbound" {
			in = append(in, trs...)
		} else {
			out = append(out, trs...)
		}
	}
	return in, out
}

// Telemetry's match.mode sets the client side (outbound) and the server side (inbound)
// apart, and disableSpanReporting turns a side's tracing off, as istiod does.
func TestTracingModesAndDisabling(t *testing.T) {
	mesh := meshConfig(t, `
extensionProviders: [{name: otel, opentelemetry: {service: otel.observability.svc.cluster.local, port: 4317}}]
defaultProviders: {tracing: [otel]}`)
	for _, tc := range []struct {
		name, tracing   string
		inRate, outRate float64 // 0: no tracing on that side
	}{
		{"server only", "[{match: {mode: SERVER}, randomSamplingPercentage: 30}]", 30, 1},
		{"client only", "[{match: {mode: CLIENT}, randomSamplingPercentage: 40}]", 1, 40},
		{"server spans off", "[{match: {mode: SERVER}, disableSpanReporting: true}]", 0, 1},
		{"all off", "[{disableSpanReporting: true}]", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := "\n---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t, namespace: default}\nspec:\n  tracing: " + tc.tracing + "\n"
			m, diags := model.Build(loadObjects(t, "_base.yaml", append(baseObjects(t), collectorEntry+tel...)), mesh)
			for _, d := range diags {
				t.Errorf("unexpected warning: %s", d)
			}
			in, out := tracingByDirection(t, Generate(m, proxy(t, productpage)))
			for _, side := range []struct {
				name string
				trs  []*hcmpb.HttpConnectionManager_Tracing
				want float64
			}{{"inbound", in, tc.inRate}, {"outbound", out, tc.outRate}} {
				if len(side.trs) == 0 {
					t.Fatalf("no %s connection manager", side.name)
				}
				for _, tr := range side.trs {
					if got := tr.GetRandomSampling().GetValue(); (tr == nil) != (side.want == 0) || got != side.want {
						t.Fatalf("%s: tracing %v, want sampling %v (0: none)", side.name, tr, side.want)
					}
				}
			}
		})
	}
}
