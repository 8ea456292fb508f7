package translate

import (
	"strings"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// TLS termination and the TCP side of a gateway: DownstreamTlsContext from a server's
// tls settings, SNI passthrough chains from VirtualService tls routes, tcp_proxy from
// tcp routes.

var tlsVersions = map[networkingv1alpha3.ServerTLSSettings_TLSProtocol]tlspb.TlsParameters_TlsProtocol{
	networkingv1alpha3.ServerTLSSettings_TLSV1_0: tlspb.TlsParameters_TLSv1_0,
	networkingv1alpha3.ServerTLSSettings_TLSV1_1: tlspb.TlsParameters_TLSv1_1,
	networkingv1alpha3.ServerTLSSettings_TLSV1_2: tlspb.TlsParameters_TLSv1_2,
	networkingv1alpha3.ServerTLSSettings_TLSV1_3: tlspb.TlsParameters_TLSv1_3,
}

// downstreamTLS is the TLS context of a server that terminates TLS (SIMPLE, MUTUAL,
// OPTIONAL_MUTUAL): minimum TLS 1.2 unless minProtocolVersion says otherwise, ALPN h2 and
// http/1.1 for HTTPS, and for the mutual modes the client CA (and subjectAltNames) to
// validate client certificates against. The certificate comes from the files
// serverCertificate/privateKey/caCertificates name (the gateway reads them, and reads them
// again when they change), or from the Secret credentialName names in the gateway's
// namespace, inline (model/credential.go: the control plane watches the Secret and pushes
// a changed one). nil when there is no certificate: no Secret yet, or MUTUAL without a
// client CA (the Kubernetes source warns, naming the Gateway, the server and the Secret).
func (g *generator) downstreamTLS(t *networkingv1alpha3.ServerTLSSettings, alpn bool) *tlspb.DownstreamTlsContext {
	mode := t.GetMode()
	mutual := mode == networkingv1alpha3.ServerTLSSettings_MUTUAL || mode == networkingv1alpha3.ServerTLSSettings_OPTIONAL_MUTUAL
	var cert *tlspb.TlsCertificate
	var ca *corepb.DataSource
	switch {
	case t.GetServerCertificate() != "" && t.GetPrivateKey() != "":
		cert = &tlspb.TlsCertificate{CertificateChain: fileSource(t.GetServerCertificate()), PrivateKey: fileSource(t.GetPrivateKey())}
		if t.GetCaCertificates() != "" {
			ca = fileSource(t.GetCaCertificates())
		}
	case t.GetCredentialName() != "":
		c := g.m.Credential(g.p.Namespace, t.GetCredentialName())
		if c == nil || mutual && len(c.CA) == 0 {
			return nil
		}
		cert = &tlspb.TlsCertificate{CertificateChain: inlineSource(c.Cert), PrivateKey: inlineSource(c.Key)}
		if len(c.CA) > 0 {
			ca = inlineSource(c.CA)
		}
	default:
		return nil
	}
	params := &tlspb.TlsParameters{TlsMinimumProtocolVersion: tlspb.TlsParameters_TLSv1_2, CipherSuites: t.GetCipherSuites()}
	if v, ok := tlsVersions[t.GetMinProtocolVersion()]; ok {
		params.TlsMinimumProtocolVersion = v
	}
	if v, ok := tlsVersions[t.GetMaxProtocolVersion()]; ok {
		params.TlsMaximumProtocolVersion = v
	}
	common := &tlspb.CommonTlsContext{TlsCertificates: []*tlspb.TlsCertificate{cert}, TlsParams: params}
	if alpn {
		common.AlpnProtocols = []string{"h2", "http/1.1"}
	}
	if mutual && ca != nil {
		vc := &tlspb.CertificateValidationContext{TrustedCa: ca}
		for _, san := range t.GetSubjectAltNames() {
			vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, sanMatcher(san))
		}
		common.ValidationContextType = &tlspb.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	return &tlspb.DownstreamTlsContext{
		CommonTlsContext:         common,
		RequireClientCertificate: wrapperspb.Bool(mode == networkingv1alpha3.ServerTLSSettings_MUTUAL),
	}
}

func inlineSource(b []byte) *corepb.DataSource {
	return &corepb.DataSource{Specifier: &corepb.DataSource_InlineBytes{InlineBytes: b}}
}

func fileSource(path string) *corepb.DataSource {
	return &corepb.DataSource{Specifier: &corepb.DataSource_Filename{Filename: path}}
}

// sanMatcher matches a subjectAltNames entry exactly: a URI SAN for "scheme://..."
// (SPIFFE identities), else a DNS SAN.
func sanMatcher(san string) *tlspb.SubjectAltNameMatcher {
	typ := tlspb.SubjectAltNameMatcher_DNS
	if strings.Contains(san, "://") {
		typ = tlspb.SubjectAltNameMatcher_URI
	}
	return &tlspb.SubjectAltNameMatcher{
		SanType: typ,
		Matcher: &matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: san}},
	}
}

func tlsTransportSocket(ctx *tlspb.DownstreamTlsContext) *corepb.TransportSocket {
	return &corepb.TransportSocket{Name: TLSTransportSocket, ConfigType: &corepb.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

// passthroughChains are a PASSTHROUGH server's chains: one per tls match of a
// VirtualService bound to its gateway (hosts intersecting the server's) that applies to
// the server, matching the match's sniHosts. A match repeating an SNI host an earlier
// chain of the listener matches is dropped, as Istio does (Envoy rejects duplicates).
func (g *generator) passthroughChains(s *model.GatewayServer, used map[string]bool) []*listenerpb.FilterChain {
	gw := s.Gateway.Key()
	var out []*listenerpb.FilterChain
	for _, vs := range g.m.VirtualServicesForGateway(g.p.Namespace, gw) {
		if len(s.VirtualServiceHosts(vs)) == 0 {
			continue
		}
		for _, tr := range vs.Config.Spec.(*networkingv1alpha3.VirtualService).GetTls() {
			for _, m := range tr.GetMatch() {
				if !model.L4MatchApplies(m.GetGateways(), m.GetPort(), gw, vs.Config.Namespace, s.Port()) || anyUsed(m.GetSniHosts(), used) {
					continue
				}
				f := g.tcpRouteFilter(vs, tr.GetRoute(), s.Port())
				if f == nil {
					continue
				}
				for _, h := range m.GetSniHosts() {
					used[h] = true
				}
				out = append(out, &listenerpb.FilterChain{
					FilterChainMatch: &listenerpb.FilterChainMatch{ServerNames: m.GetSniHosts(), TransportProtocol: "tls"},
					Filters:          g.gatewayTCPFilters(f),
				})
			}
		}
	}
	return out
}

func anyUsed(hosts []string, used map[string]bool) bool {
	for _, h := range hosts {
		if used[h] {
			return true
		}
	}
	return false
}

// gatewayTCPFilter is the tcp_proxy of a TCP server (or a TLS server that terminates
// TLS): the first tcp route, across the VirtualServices bound to its gateway whose hosts
// intersect the server's, whose match applies to the server. nil when none does.
func (g *generator) gatewayTCPFilter(s *model.GatewayServer) *listenerpb.Filter {
	gw := s.Gateway.Key()
	for _, vs := range g.m.VirtualServicesForGateway(g.p.Namespace, gw) {
		if len(s.VirtualServiceHosts(vs)) == 0 {
			continue
		}
		for _, tr := range vs.Config.Spec.(*networkingv1alpha3.VirtualService).GetTcp() {
			applies := len(tr.GetMatch()) == 0
			for _, m := range tr.GetMatch() {
				applies = applies || model.L4MatchApplies(m.GetGateways(), m.GetPort(), gw, vs.Config.Namespace, s.Port())
			}
			if applies {
				return g.tcpRouteFilter(vs, tr.GetRoute(), s.Port())
			}
		}
	}
	return nil
}

// tcpRouteFilter is Istio's tcp_proxy for a tcp or tls route: one destination → its
// cluster (stat prefix the cluster name, the DestinationRule's tcp idle timeout);
// several → weighted clusters (stat prefix "<virtual service>.<namespace>", zero weights
// dropped). nil when no destination is left.
func (g *generator) tcpRouteFilter(vs *model.VirtualService, dests []*networkingv1alpha3.RouteDestination, port uint32) *listenerpb.Filter {
	ns := vs.Config.Namespace
	var tp *tcppb.TcpProxy
	switch len(dests) {
	case 0:
		return nil
	case 1:
		d := dests[0].GetDestination()
		c := g.destinationCluster(d, ns, port)
		tp = &tcppb.TcpProxy{StatPrefix: c, ClusterSpecifier: &tcppb.TcpProxy_Cluster{Cluster: c}}
		dr := g.m.DestinationRule(g.p.Namespace, g.p.Labels, model.ResolveHost(d.GetHost(), ns))
		if idle := dr.Policy(clusterPort(c), d.GetSubset()).GetConnectionPool().GetTcp().GetIdleTimeout(); idle != nil {
			tp.IdleTimeout = durationpb.New(idle.AsDuration())
		}
	default:
		wc := &tcppb.TcpProxy_WeightedCluster{}
		for _, rd := range dests {
			if rd.GetWeight() <= 0 {
				continue
			}
			wc.Clusters = append(wc.Clusters, &tcppb.TcpProxy_WeightedCluster_ClusterWeight{
				Name: g.destinationCluster(rd.GetDestination(), ns, port), Weight: uint32(rd.GetWeight()),
			})
		}
		if len(wc.Clusters) == 0 {
			return nil
		}
		tp = &tcppb.TcpProxy{StatPrefix: vs.Config.Name + "." + ns, ClusterSpecifier: &tcppb.TcpProxy_WeightedClusters{WeightedClusters: wc}}
	}
	return &listenerpb.Filter{Name: TCPProxyFilter, ConfigType: &listenerpb.Filter_TypedConfig{TypedConfig: mustAny(tp)}}
}

// clusterPort is the port field of a cluster name "outbound|<port>|<subset>|<host>".
func clusterPort(name string) uint32 {
	parts := strings.SplitN(name, "|", 4)
	if len(parts) != 4 {
		return 0
	}
	var n uint32
	for _, c := range parts[1] {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}
