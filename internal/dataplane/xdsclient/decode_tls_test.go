package xdsclient

import (
	"strings"
	"testing"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspectorpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

const fxHTTPSChain = "https.443.https.gw.istio-system"

func fileSource(name string) *corepb.DataSource {
	return &corepb.DataSource{Specifier: &corepb.DataSource_Filename{Filename: name}}
}

// fxDownstreamTLS is a MUTUAL server's context as the control plane writes it.
func fxDownstreamTLS() *tlspb.DownstreamTlsContext {
	return &tlspb.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlspb.CommonTlsContext{
			TlsCertificates: []*tlspb.TlsCertificate{{
				CertificateChain: fileSource("/etc/gw/tls.crt"),
				PrivateKey:       fileSource("/etc/gw/tls.key"),
			}},
			AlpnProtocols: []string{"h2", "http/1.1"},
			TlsParams: &tlspb.TlsParameters{
				TlsMinimumProtocolVersion: tlspb.TlsParameters_TLSv1_2,
				CipherSuites:              []string{"ECDHE-RSA-AES128-GCM-SHA256"},
			},
			ValidationContextType: &tlspb.CommonTlsContext_ValidationContext{ValidationContext: &tlspb.CertificateValidationContext{
				TrustedCa: fileSource("/etc/gw/ca.crt"),
				MatchTypedSubjectAltNames: []*tlspb.SubjectAltNameMatcher{{
					SanType: tlspb.SubjectAltNameMatcher_URI,
					Matcher: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: "spiffe://cluster.local/ns/default/sa/client"}},
				}},
			}},
		},
	}
}

// fxGatewayListener is a router's 0.0.0.0_443: a MUTUAL HTTPS server and a passthrough
// chain, with the TLS inspector; tls (when set) replaces the HTTPS chain's context.
func fxGatewayListener(t testing.TB, tls *tlspb.DownstreamTlsContext) *listenerpb.Listener {
	t.Helper()
	if tls == nil {
		tls = fxDownstreamTLS()
	}
	l := fxListenerProto(t)
	l.Name = "0.0.0.0_443"
	l.Address = socketAddr("0.0.0.0", 443)
	l.BindToPort = nil
	l.ListenerFilters = []*listenerpb.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
		ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(t, &tlsinspectorpb.TlsInspector{})}}}
	https := l.FilterChains[0]
	https.Name = fxHTTPSChain
	https.FilterChainMatch = &listenerpb.FilterChainMatch{ServerNames: []string{"Bookinfo.Example.com", "*.example.org"}}
	https.TransportSocket = &corepb.TransportSocket{Name: "envoy.transport_sockets.tls",
		ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(t, tls)}}
	pass := &listenerpb.FilterChain{
		FilterChainMatch: &listenerpb.FilterChainMatch{ServerNames: []string{"db.example.com"}, TransportProtocol: "tls"},
		Filters: []*listenerpb.Filter{{Name: "envoy.filters.network.tcp_proxy", ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(t, &tcppb.TcpProxy{
			StatPrefix: "outbound|443||db.example.com", ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: "outbound|443||db.example.com"},
		})}}},
	}
	l.FilterChains = append(l.FilterChains, pass)
	return l
}

func TestDecodeGatewayListener(t *testing.T) {
	l, err := DecodeListener(fxGatewayListener(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !l.TLSInspector || !l.BindToPort || len(l.FilterChains) != 2 {
		t.Fatalf("listener = %+v", l)
	}
	https, pass := l.FilterChains[0], l.FilterChains[1]
	if got := strings.Join(https.Match.ServerNames, ","); got != "bookinfo.example.com,*.example.org" {
		t.Errorf("server_names = %s (want lower-cased)", got)
	}
	tc := https.TLS
	if tc == nil || https.HTTP == nil {
		t.Fatalf("HTTPS chain = %+v", https)
	}
	if tc.Certificates[0].Chain.Filename != "/etc/gw/tls.crt" || tc.Certificates[0].PrivateKey.Filename != "/etc/gw/tls.key" ||
		tc.TrustedCA.Filename != "/etc/gw/ca.crt" || !tc.RequireClientCertificate || tc.MinVersion != resource.TLS12 || tc.MaxVersion != resource.TLSAuto ||
		strings.Join(tc.ALPN, ",") != "h2,http/1.1" || strings.Join(tc.CipherSuites, ",") != "ECDHE-RSA-AES128-GCM-SHA256" {
		t.Errorf("TLS = %+v", tc)
	}
	if len(tc.SANs) != 1 || tc.SANs[0].Type != resource.SANURI || tc.SANs[0].Matcher.Value != "spiffe://cluster.local/ns/default/sa/client" {
		t.Errorf("SANs = %+v", tc.SANs)
	}
	if pass.TLS != nil || pass.TCP == nil || pass.Match.TransportProtocol != "tls" || pass.Match.ServerNames[0] != "db.example.com" {
		t.Errorf("passthrough chain = %+v", pass)
	}
}

func TestDecodeInlineCertificate(t *testing.T) {
	tc := fxDownstreamTLS()
	tc.RequireClientCertificate = nil
	tc.CommonTlsContext.ValidationContextType = nil
	tc.CommonTlsContext.TlsCertificates[0].CertificateChain = &corepb.DataSource{Specifier: &corepb.DataSource_InlineString{InlineString: "CERT PEM"}}
	tc.CommonTlsContext.TlsCertificates[0].PrivateKey = &corepb.DataSource{Specifier: &corepb.DataSource_InlineBytes{InlineBytes: []byte("KEY PEM")}}
	l, err := DecodeListener(fxGatewayListener(t, tc))
	if err != nil {
		t.Fatal(err)
	}
	got := l.FilterChains[0].TLS.Certificates[0]
	if string(got.Chain.Inline) != "CERT PEM" || string(got.PrivateKey.Inline) != "KEY PEM" || got.Chain.Filename != "" {
		t.Errorf("certificate = %+v", got)
	}
}

func TestDecodeTLSErrors(t *testing.T) {
	prefix := `filter_chains[0] "` + fxHTTPSChain + `".`
	ctx := func(f func(*tlspb.DownstreamTlsContext)) *tlspb.DownstreamTlsContext {
		c := fxDownstreamTLS()
		f(c)
		return c
	}
	sds := []*tlspb.SdsSecretConfig{{Name: "kubernetes://bookinfo-credential"}}
	tests := []struct {
		name string
		l    *listenerpb.Listener
		want string
	}{
		{"SDS certificate", fxGatewayListener(t, ctx(func(c *tlspb.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = nil
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = sds
		})), prefix + `transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: "kubernetes://bookinfo-credential": only the workload identity's SDS resources are served`},
		{"SDS validation (credentialName MUTUAL)", fxGatewayListener(t, ctx(func(c *tlspb.DownstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlspb.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlspb.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlspb.CertificateValidationContext{}, ValidationContextSdsSecretConfig: sds[0],
			}}
		})), prefix + `transport_socket.typed_config.common_tls_context.combined_validation_context.validation_context_sds_secret_config.name: "kubernetes://bookinfo-credential": only the workload identity's SDS resources are served`},
		{"no certificate", fxGatewayListener(t, ctx(func(c *tlspb.DownstreamTlsContext) { c.CommonTlsContext.TlsCertificates = nil })),
			prefix + "transport_socket.typed_config.common_tls_context.tls_certificates: a server needs a certificate"},
		{"client certificate without CA", fxGatewayListener(t, ctx(func(c *tlspb.DownstreamTlsContext) { c.CommonTlsContext.ValidationContextType = nil })),
			prefix + "transport_socket.typed_config.require_client_certificate: needs common_tls_context.validation_context.trusted_ca"},
		{"max below min", fxGatewayListener(t, ctx(func(c *tlspb.DownstreamTlsContext) {
			c.CommonTlsContext.TlsParams.TlsMaximumProtocolVersion = tlspb.TlsParameters_TLSv1_1
		})), prefix + "transport_socket.typed_config.common_tls_context.tls_params.tls_maximum_protocol_version: TLSv1_1 is below tls_minimum_protocol_version TLSv1_2"},
		{"environment variable", fxGatewayListener(t, ctx(func(c *tlspb.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates[0].PrivateKey = &corepb.DataSource{Specifier: &corepb.DataSource_EnvironmentVariable{EnvironmentVariable: "KEY"}}
		})), prefix + "transport_socket.typed_config.common_tls_context.tls_certificates[0].private_key.environment_variable: not supported"},
		{"partial wildcard", func() *listenerpb.Listener {
			l := fxGatewayListener(t, nil)
			l.FilterChains[0].FilterChainMatch.ServerNames = []string{"api*.example.com"}
			return l
		}(), prefix + `filter_chain_match.server_names[0]: "api*.example.com": only a leading "*." wildcard is supported`},
		{"overlapping chains", func() *listenerpb.Listener {
			l := fxGatewayListener(t, nil)
			l.FilterChains[1].FilterChainMatch = &listenerpb.FilterChainMatch{ServerNames: []string{"bookinfo.example.com"}}
			return l
		}(), `filter_chains[1]: matches the same connections as filter_chains[0] "` + fxHTTPSChain + `" (server name "bookinfo.example.com"`},
		{"unknown transport socket", func() *listenerpb.Listener {
			l := fxGatewayListener(t, nil)
			l.FilterChains[0].TransportSocket = &corepb.TransportSocket{Name: "envoy.transport_sockets.alts"}
			return l
		}(), prefix + `transport_socket: "envoy.transport_sockets.alts" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeListener(tt.l)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestDecodeRequireTLS(t *testing.T) {
	rc := fxRouteProto("")
	rc.VirtualHosts[0].RequireTls = routepb.VirtualHost_ALL
	got, err := DecodeRouteConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if got.VirtualHosts[0].RequireTLS != resource.RequireTLSAll {
		t.Errorf("RequireTLS = %v, want ALL", got.VirtualHosts[0].RequireTLS)
	}
}

// A listener whose certificate comes from SDS is NACKed over a real ADS stream, naming the
// listener and the chain; the previous listeners stay applied.
func TestNACKSDSKeepsPreviousConfig(t *testing.T) {
	cp := startControlPlane(t, "127.0.0.1:0")
	cp.set(t, "1", fullConfig(t, ""))
	rec := &recorder{}
	startClient(t, cp.addr, rec)
	testutil.Eventually(t, 10*time.Second, "version 1", func() bool { return cp.acked(ListenerType, "1") && complete(rec.last()) })

	tc := fxDownstreamTLS()
	tc.CommonTlsContext.TlsCertificates = nil
	tc.CommonTlsContext.TlsCertificateSdsSecretConfigs = []*tlspb.SdsSecretConfig{{Name: "kubernetes://bookinfo-credential"}}
	cfg := fullConfig(t, "")
	cfg[resourcev3.ListenerType] = []types.Resource{fxListenerProto(t), fxGatewayListener(t, tc)}
	cp.set(t, "2", cfg)
	testutil.Eventually(t, 10*time.Second, "an LDS NACK", func() bool { return cp.nack(ListenerType) != nil })
	msg := cp.nack(ListenerType).GetErrorDetail().GetMessage()
	for _, want := range []string{`listener "0.0.0.0_443"`, `filter_chains[0] "` + fxHTTPSChain + `"`, "a Gateway's credentialName is not fetched by SDS (kubernetes://<name>, as istiod sends it)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("NACK %q does not contain %q", msg, want)
		}
	}
	if s := rec.last(); len(s.Listeners) != 1 || s.Listeners[fxListener] == nil {
		t.Errorf("applied listeners changed after the NACK: %v", s.Listeners)
	}
}

func FuzzDecodeGatewayListener(f *testing.F) {
	seed(f, fxGatewayListener(f, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m listenerpb.Listener
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		_, _ = DecodeListener(&m)
	})
}
