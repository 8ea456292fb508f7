package translate

import (
	"maps"
	"slices"
	"strings"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	rawbufferpb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Mutual TLS between sidecars, as istiod writes it (only when the mesh has workload
// certificates, model.Mesh.MTLS):
//
//   - inbound: each port's chain by its PeerAuthentication mode: DISABLE plaintext only;
//     STRICT one chain matching transport_protocol "tls" that terminates mutual TLS with the
//     workload certificate (SDS "default", client certificates verified against "ROOTCA");
//     PERMISSIVE that chain plus the plaintext one matching "raw_buffer"; the TLS inspector
//     tells them apart.
//   - outbound: a DestinationRule's trafficPolicy.tls (per port, per subset) wins; else auto
//     mTLS: transport_socket_matches sending ISTIO_MUTUAL to endpoints labelled tlsMode
//     "istio" (they have a sidecar) and plaintext to the others, with Istio's SNI and ALPN,
//     verifying the server's SPIFFE identity against the service's accounts.

// Istio's names on the wire.
const (
	SDSWorkloadCertificate = "default"
	SDSRootCA              = "ROOTCA"
	sdsCluster             = "sds-grpc"
	transportMatchKey      = "envoy.transport_socket_match"
	rawBufferSocket        = "envoy.transport_sockets.raw_buffer"
)

// mtlsALPN is what an ISTIO_MUTUAL client offers (Istio's peer metadata exchange first).
var mtlsALPN = []string{"istio-peer-exchange", "istio"}

// sdsSecret names an SDS resource as istiod does (the agent's SDS server over gRPC).
func sdsSecret(name string) *tlspb.SdsSecretConfig {
	return &tlspb.SdsSecretConfig{Name: name, SdsConfig: &corepb.ConfigSource{
		ResourceApiVersion: corepb.ApiVersion_V3,
		ConfigSourceSpecifier: &corepb.ConfigSource_ApiConfigSource{ApiConfigSource: &corepb.ApiConfigSource{
			ApiType: corepb.ApiConfigSource_GRPC, TransportApiVersion: corepb.ApiVersion_V3, SetNodeOnFirstMessageOnly: true,
			GrpcServices: []*corepb.GrpcService{{TargetSpecifier: &corepb.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corepb.GrpcService_EnvoyGrpc{ClusterName: sdsCluster}}}},
		}},
	}}
}

// istioMutualContext is the common context of ISTIO_MUTUAL: the workload certificate
// and the mesh roots by SDS, the peer's identity checked against sans (none: any
// identity the roots vouch for).
func istioMutualContext(sans []string, alpn []string) *tlspb.CommonTlsContext {
	def := &tlspb.CertificateValidationContext{}
	for _, s := range sans {
		def.MatchTypedSubjectAltNames = append(def.MatchTypedSubjectAltNames, uriSAN(s))
	}
	return &tlspb.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlspb.SdsSecretConfig{sdsSecret(SDSWorkloadCertificate)},
		ValidationContextType: &tlspb.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlspb.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: def, ValidationContextSdsSecretConfig: sdsSecret(SDSRootCA),
		}},
		AlpnProtocols: alpn,
	}
}

// uriSAN matches a SPIFFE identity exactly.
func uriSAN(id string) *tlspb.SubjectAltNameMatcher {
	return &tlspb.SubjectAltNameMatcher{SanType: tlspb.SubjectAltNameMatcher_URI, Matcher: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: id}}}
}

// inboundMTLSChains turns an inbound port's plaintext chain into the chains of its
// PeerAuthentication mode.
func (g *generator) inboundMTLSChains(ip model.InboundPort, plain *listenerpb.FilterChain) []*listenerpb.FilterChain {
	if !g.m.MTLS() {
		return []*listenerpb.FilterChain{plain}
	}
	mode, policy := g.m.InboundMTLS(g.p, ip.Port)
	plain.Metadata = &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{"lucid": mustStruct(map[string]any{
		"mtls": map[string]any{"mode": mode.String(), "policy": policy},
	})}}
	if mode == model.MTLSDisable {
		return []*listenerpb.FilterChain{plain}
	}
	alpn := []string{"h2", "http/1.1"}
	if !ip.IsHTTP() {
		alpn = mtlsALPN
	}
	secure := proto.Clone(plain).(*listenerpb.FilterChain)
	secure.FilterChainMatch.TransportProtocol = "tls"
	secure.TransportSocket = tlsTransportSocket(&tlspb.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext:         g.withPeerTrustDomains(istioMutualContext(nil, alpn)), // authz_trustdomain.go
	})
	if mode == model.MTLSStrict {
		return []*listenerpb.FilterChain{secure}
	}
	plain.FilterChainMatch.TransportProtocol = "raw_buffer"
	return []*listenerpb.FilterChain{secure, plain}
}

// inboundTLSInspector adds the TLS inspector to virtualInbound when a chain matches on
// the transport protocol.
func inboundTLSInspector(l *listenerpb.Listener) {
	for _, fc := range l.GetFilterChains() {
		if fc.GetFilterChainMatch().GetTransportProtocol() != "" {
			l.ListenerFilters = append(l.ListenerFilters, &listenerpb.ListenerFilter{
				Name:       TLSInspectorFilter,
				ConfigType: &listenerpb.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorpb.TlsInspector{})},
			})
			return
		}
	}
}

// outboundMTLS sets an outbound cluster's transport: the DestinationRule's tls, else
// auto mTLS. It records the mode and what decided it (cluster metadata lucid.tls).
func (g *generator) outboundMTLS(c *clusterpb.Cluster, s *model.Service, port model.Port, dr *model.DestinationRule, subset string) {
	tls := dr.Policy(port.Number, subset).GetTls()
	sni := "outbound_." + itoa(port.Number) + "_." + subset + "_." + s.Host
	mode, source := "", ""
	switch {
	case tls != nil && tls.GetMode() != networkingv1alpha3.ClientTLSSettings_DISABLE:
		mode, source = tls.GetMode().String(), "DestinationRule "+dr.Config.Namespace+"/"+dr.Config.Name
		c.TransportSocket = g.destinationRuleTLS(tls, s, port, sni)
	case tls != nil:
		mode, source = "DISABLE", "DestinationRule "+dr.Config.Namespace+"/"+dr.Config.Name
	case g.m.AutoMTLS():
		mode, source = "auto", "auto mTLS (ISTIO_MUTUAL to endpoints with a sidecar)"
		up := &tlspb.UpstreamTlsContext{Sni: sni, CommonTlsContext: istioMutualContext(g.serviceAccounts(s, port), mtlsALPN)}
		c.TransportSocketMatches = []*clusterpb.Cluster_TransportSocketMatch{
			{Name: "tlsMode-istio", Match: mustStruct(map[string]any{"tlsMode": "istio"}), TransportSocket: upstreamTransportSocket(up)},
			{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: &corepb.TransportSocket{
				Name: rawBufferSocket, ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbufferpb.RawBuffer{})}}},
		}
	default:
		return
	}
	if c.Metadata == nil {
		c.Metadata = &corepb.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	}
	lucid := c.Metadata.FilterMetadata["lucid"]
	if lucid == nil {
		lucid = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		c.Metadata.FilterMetadata["lucid"] = lucid
	}
	lucid.Fields["tls"] = structpb.NewStructValue(mustStruct(map[string]any{"mode": mode, "source": source}))
}

// destinationRuleTLS is trafficPolicy.tls as Istio translates it.
func (g *generator) destinationRuleTLS(t *networkingv1alpha3.ClientTLSSettings, s *model.Service, port model.Port, sni string) *corepb.TransportSocket {
	sans := t.GetSubjectAltNames()
	if t.GetMode() == networkingv1alpha3.ClientTLSSettings_ISTIO_MUTUAL {
		if len(sans) == 0 {
			sans = g.serviceAccounts(s, port)
		}
		if t.GetSni() != "" {
			sni = t.GetSni()
		}
		return upstreamTransportSocket(&tlspb.UpstreamTlsContext{Sni: sni, CommonTlsContext: istioMutualContext(sans, mtlsALPN)})
	}
	// SIMPLE and MUTUAL originate TLS to a server outside the mesh's identities.
	c := &tlspb.CommonTlsContext{}
	if t.GetMode() == networkingv1alpha3.ClientTLSSettings_MUTUAL && t.GetClientCertificate() != "" {
		c.TlsCertificates = []*tlspb.TlsCertificate{{CertificateChain: fileDataSource(t.GetClientCertificate()), PrivateKey: fileDataSource(t.GetPrivateKey())}}
	}
	if !t.GetInsecureSkipVerify().GetValue() && t.GetCaCertificates() != "" {
		v := &tlspb.CertificateValidationContext{TrustedCa: fileDataSource(t.GetCaCertificates())}
		for _, san := range sans {
			v.MatchTypedSubjectAltNames = append(v.MatchTypedSubjectAltNames, &tlspb.SubjectAltNameMatcher{
				SanType: tlspb.SubjectAltNameMatcher_URI, Matcher: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: san}}})
		}
		c.ValidationContextType = &tlspb.CommonTlsContext_ValidationContext{ValidationContext: v}
	}
	return upstreamTransportSocket(&tlspb.UpstreamTlsContext{Sni: t.GetSni(), CommonTlsContext: c})
}

func fileDataSource(path string) *corepb.DataSource {
	return &corepb.DataSource{Specifier: &corepb.DataSource_Filename{Filename: path}}
}

func upstreamTransportSocket(u *tlspb.UpstreamTlsContext) *corepb.TransportSocket {
	return &corepb.TransportSocket{Name: TLSTransportSocket, ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(u)}}
}

// serviceAccounts are the SPIFFE identities of the service port's endpoints with a
// sidecar, sorted (Istio's subjectAltNames of auto mTLS).
func (g *generator) serviceAccounts(s *model.Service, port model.Port) []string {
	var out []string
	td := g.m.TrustDomain()
	for _, e := range g.m.Endpoints(s.Host, port.Number) {
		if !g.m.HasSidecar(e) {
			continue
		}
		sa := e.ServiceAccount
		switch {
		case strings.HasPrefix(sa, "spiffe://"):
		case sa == "":
			sa = "spiffe://" + td + "/ns/" + e.Namespace + "/sa/default"
		default:
			sa = "spiffe://" + td + "/ns/" + e.Namespace + "/sa/" + sa
		}
		out = append(out, sa)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// istioTLSMode is the endpoint metadata auto mTLS matches on.
var istioTLSMode = mustStruct(map[string]any{"tlsMode": "istio"})

// withTLSMode adds tlsMode "istio" to the metadata of endpoints with a sidecar, when the
// mesh has certificates.
func (g *generator) withTLSMode(meta func(*model.Endpoint) *corepb.Metadata) func(*model.Endpoint) *corepb.Metadata {
	if !g.m.MTLS() {
		return meta
	}
	return func(e *model.Endpoint) *corepb.Metadata {
		md := meta(e)
		if !g.m.HasSidecar(e) {
			return md
		}
		fm := maps.Clone(md.GetFilterMetadata())
		if fm == nil {
			fm = map[string]*structpb.Struct{}
		}
		fm[transportMatchKey] = istioTLSMode
		// lucid.mtls: the server's PeerAuthentication on this port, so a client that sends
		// plaintext to a STRICT server can say why the connection was reset.
		lucid := &structpb.Struct{Fields: maps.Clone(fm["lucid"].GetFields())}
		if lucid.Fields == nil {
			lucid.Fields = map[string]*structpb.Value{}
		}
		mode, policy := g.m.InboundMTLS(&model.Proxy{Namespace: e.Namespace, Labels: e.Labels}, e.Port)
		lucid.Fields["mtls"] = structpb.NewStructValue(mustStruct(map[string]any{"mode": mode.String(), "policy": policy}))
		fm["lucid"] = lucid
		return &corepb.Metadata{FilterMetadata: fm}
	}
}
