package translate

import (
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
)

// Mutual TLS for proxyless gRPC, as Istio's grpcgen writes it: gRPC has no SDS and no
// transport_socket_matches; it reads certificates through the certificate providers its
// bootstrap names (grpc-go's xds credentials; `lucid grpc-agent` writes that bootstrap
// and keeps the files fresh). So a gRPC client's cluster carries one UpstreamTlsContext
// naming provider instance "default" for the workload certificate and the roots
// (certificate names "default" and "ROOTCA", in both the current fields and the
// deprecated ones older gRPC releases read), when a sidecar in its place would send
// ISTIO_MUTUAL:
//
//   - a DestinationRule's ISTIO_MUTUAL: always, with the same subject alt names;
//   - auto mTLS: when every endpoint of the cluster has a sidecar (tlsMode "istio"), the
//     one case where a sidecar would use mutual TLS for every connection; with a mix gRPC
//     cannot choose per endpoint, and connects in plaintext;
//   - SIMPLE and MUTUAL (certificate files) and plaintext: no transport socket (gRPC
//     takes no certificate files from xDS).
//
// A client that does not use xds credentials ignores the context and connects in
// plaintext.

// GRPCCertProvider is the certificate provider instance gRPC's TLS contexts name (Istio's).
const GRPCCertProvider = "default"

// grpcTLSContext is the common TLS context of proxyless gRPC: certificates and roots from
// the bootstrap's certificate provider, the peer's identity one of sans (none: any
// identity the roots vouch for).
func grpcTLSContext(sans []string) *tlspb.CommonTlsContext {
	def := &tlspb.CertificateValidationContext{
		CaCertificateProviderInstance: &tlspb.CertificateProviderPluginInstance{InstanceName: GRPCCertProvider, CertificateName: SDSRootCA},
	}
	for _, s := range sans {
		// grpc-go reads match_subject_alt_names only (not the typed form).
		def.MatchSubjectAltNames = append(def.MatchSubjectAltNames, //nolint:staticcheck // the field gRPC reads
			&matcherpb.StringMatcher{MatchPattern: &matcherpb.StringMatcher_Exact{Exact: s}})
	}
	return &tlspb.CommonTlsContext{
		TlsCertificateProviderInstance: &tlspb.CertificateProviderPluginInstance{InstanceName: GRPCCertProvider, CertificateName: SDSWorkloadCertificate},
		// The deprecated fields, for gRPC releases before 1.66 (Istio sends both).
		TlsCertificateCertificateProviderInstance: &tlspb.CommonTlsContext_CertificateProviderInstance{ //nolint:staticcheck // older gRPC
			InstanceName: GRPCCertProvider, CertificateName: SDSWorkloadCertificate,
		},
		ValidationContextType: &tlspb.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlspb.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: def,
			ValidationContextCertificateProviderInstance: &tlspb.CommonTlsContext_CertificateProviderInstance{ //nolint:staticcheck // older gRPC
				InstanceName: GRPCCertProvider, CertificateName: SDSRootCA,
			},
		}},
	}
}

// grpcClusterTLS is cluster c as a gRPC client gets it (c itself when unchanged): its
// ISTIO_MUTUAL in certificate provider form, other transport sockets removed. mutual
// reports whether every endpoint of c has a sidecar (auto mTLS applies to all).
func grpcClusterTLS(c *clusterpb.Cluster, allMutual func(cluster string) bool) *clusterpb.Cluster {
	if c.GetTransportSocket() == nil && len(c.GetTransportSocketMatches()) == 0 {
		return c
	}
	var sans []string
	mutual := false
	if ts := c.GetTransportSocket(); ts != nil {
		sans, mutual = istioMutualSANs(ts.GetTypedConfig().GetValue())
	} else if allMutual(c.GetName()) {
		for _, m := range c.GetTransportSocketMatches() {
			if m.GetName() == "tlsMode-istio" {
				sans, mutual = istioMutualSANs(m.GetTransportSocket().GetTypedConfig().GetValue())
			}
		}
	}
	c = proto.Clone(c).(*clusterpb.Cluster)
	c.TransportSocket, c.TransportSocketMatches = nil, nil
	if mutual {
		c.TransportSocket = upstreamTransportSocket(&tlspb.UpstreamTlsContext{CommonTlsContext: grpcTLSContext(sans)})
	}
	return c
}

// istioMutualSANs reads an UpstreamTlsContext: whether it is ISTIO_MUTUAL (the workload
// certificate by SDS) and the identities it accepts.
func istioMutualSANs(raw []byte) (sans []string, ok bool) {
	var up tlspb.UpstreamTlsContext
	if proto.Unmarshal(raw, &up) != nil {
		return nil, false
	}
	common := up.GetCommonTlsContext()
	certs := common.GetTlsCertificateSdsSecretConfigs()
	if len(certs) != 1 || certs[0].GetName() != SDSWorkloadCertificate {
		return nil, false
	}
	for _, m := range common.GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
		sans = append(sans, m.GetMatcher().GetExact())
	}
	return sans, true
}

// allEndpointsMutual reports, by cluster name, whether the cluster's assignment in
// endpoints has endpoints and every one carries tlsMode "istio".
func allEndpointsMutual(endpoints *Group) func(string) bool {
	mutual := map[string]bool{}
	for _, m := range endpoints.Messages() {
		cla, ok := m.(*endpointpb.ClusterLoadAssignment)
		if !ok {
			continue
		}
		all, n := true, 0
		for _, l := range cla.GetEndpoints() {
			for _, e := range l.GetLbEndpoints() {
				all = all && e.GetMetadata().GetFilterMetadata()[transportMatchKey].GetFields()["tlsMode"].GetStringValue() == "istio"
				n++
			}
		}
		mutual[cla.GetClusterName()] = all && n > 0
	}
	return func(name string) bool { return mutual[name] }
}
