package xdsclient

import (
	"strings"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func fxSDS(name string) *tlspb.SdsSecretConfig {
	return &tlspb.SdsSecretConfig{Name: name, SdsConfig: &corepb.ConfigSource{ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}}}}
}

// fxIstioMutual is ISTIO_MUTUAL's common context as istiod writes it: the workload
// certificate and the roots by SDS, the service accounts as exact SAN matchers.
func fxIstioMutual(sans ...string) *tlspb.CommonTlsContext {
	var ms []*tlspb.SubjectAltNameMatcher
	for _, s := range sans {
		ms = append(ms, &tlspb.SubjectAltNameMatcher{SanType: tlspb.SubjectAltNameMatcher_URI, Matcher: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: s}}})
	}
	return &tlspb.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlspb.SdsSecretConfig{fxSDS("default")},
		ValidationContextType: &tlspb.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlspb.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlspb.CertificateValidationContext{MatchTypedSubjectAltNames: ms},
			ValidationContextSdsSecretConfig: fxSDS("ROOTCA"),
		}},
		AlpnProtocols: []string{"istio-peer-exchange", "istio"},
	}
}

// fxAutoMTLSCluster is an outbound cluster with Istio's auto mTLS matches.
func fxAutoMTLSCluster(t testing.TB) *clusterpb.Cluster {
	t.Helper()
	c := fxClusterProto()
	up := &tlspb.UpstreamTlsContext{Sni: "outbound_.9080_._.reviews.default.svc.cluster.local", CommonTlsContext: fxIstioMutual("spiffe://cluster.local/ns/default/sa/reviews")}
	c.TransportSocketMatches = []*clusterpb.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", Match: &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
			TransportSocket: &corepb.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(t, up)}}},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{},
			TransportSocket: &corepb.TransportSocket{Name: "envoy.transport_sockets.raw_buffer"}},
	}
	return c
}

func TestDecodeAutoMTLSCluster(t *testing.T) {
	c, err := DecodeCluster(fxAutoMTLSCluster(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS != nil || len(c.TLSMatches) != 2 {
		t.Fatalf("TLS %+v matches %+v", c.TLS, c.TLSMatches)
	}
	u := c.TLSMatches[0].TLS
	if u == nil || u.SNI != "outbound_.9080_._.reviews.default.svc.cluster.local" || u.CertificateSDS != "default" || u.ValidationSDS != "ROOTCA" ||
		strings.Join(u.ALPN, ",") != "istio-peer-exchange,istio" || len(u.SANs) != 1 || u.SANs[0].Matcher.Value != "spiffe://cluster.local/ns/default/sa/reviews" {
		t.Errorf("tlsMode-istio = %+v", u)
	}
	withSidecar := &resource.Endpoint{TransportMatch: map[string]string{"tlsMode": "istio"}}
	if c.TransportFor(withSidecar) != u || c.TransportFor(&resource.Endpoint{}) != nil {
		t.Error("TransportFor: an endpoint with tlsMode istio gets mutual TLS, one without plaintext")
	}
}

func TestDecodeEndpointTLSMode(t *testing.T) {
	cla := fxEndpointsProto("127.0.0.1")
	cla.Endpoints[0].LbEndpoints[0].Metadata.FilterMetadata["envoy.transport_socket_match"] = &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}}
	e, err := DecodeEndpoints(cla)
	if err != nil {
		t.Fatal(err)
	}
	if e.Endpoints[0].TransportMatch["tlsMode"] != "istio" {
		t.Errorf("TransportMatch = %v", e.Endpoints[0].TransportMatch)
	}
	cla.Endpoints[0].LbEndpoints[0].Metadata.FilterMetadata["envoy.transport_socket_match"].Fields["tlsMode"] = structpb.NewBoolValue(true)
	if _, err := DecodeEndpoints(cla); err == nil || !strings.Contains(err.Error(), `filter_metadata["envoy.transport_socket_match"]["tlsMode"]: only string values`) {
		t.Errorf("bool tlsMode: %v", err)
	}
}

// An inbound chain of a STRICT or PERMISSIVE port: the workload certificate and the roots
// by SDS, client certificates required.
func TestDecodeInboundMTLSChain(t *testing.T) {
	d := &tlspb.DownstreamTlsContext{RequireClientCertificate: wrapperspb.Bool(true), CommonTlsContext: fxIstioMutual()}
	d.CommonTlsContext.AlpnProtocols = []string{"h2", "http/1.1"}
	l := fxGatewayListener(t, d)
	got, err := DecodeListener(l)
	if err != nil {
		t.Fatal(err)
	}
	tc := got.FilterChains[0].TLS
	if tc.CertificateSDS != "default" || tc.ValidationSDS != "ROOTCA" || !tc.RequireClientCertificate || len(tc.Certificates) != 0 {
		t.Errorf("TLS = %+v", tc)
	}
}

func TestDecodeMTLSErrors(t *testing.T) {
	tests := []struct {
		name string
		f    func(*clusterpb.Cluster)
		want string
	}{
		{"other SDS name", func(c *clusterpb.Cluster) {
			up := &tlspb.UpstreamTlsContext{CommonTlsContext: fxIstioMutual()}
			up.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = "file-cert:/etc/certs/cert.pem~/etc/certs/key.pem"
			c.TransportSocket = &corepb.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(t, up)}}
		}, `transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: "file-cert:/etc/certs/cert.pem~/etc/certs/key.pem": only the workload identity's SDS resources`},
		{"a DownstreamTlsContext on a cluster", func(c *clusterpb.Cluster) {
			c.TransportSocket = &corepb.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlspb.DownstreamTlsContext{})}}
		}, `transport_socket.typed_config: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext" is not an UpstreamTlsContext`},
		{"match on a number", func(c *clusterpb.Cluster) {
			c.TransportSocketMatches[0].Match.Fields["tlsMode"] = structpb.NewNumberValue(1)
		}, `transport_socket_matches[0].match["tlsMode"]: only string values are supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fxAutoMTLSCluster(t)
			tt.f(c)
			_, err := DecodeCluster(c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant %s", err, tt.want)
			}
		})
	}
}
