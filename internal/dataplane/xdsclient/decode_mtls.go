package xdsclient

import (
	"fmt"
	"sort"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Mutual TLS between sidecars, as Istio configures it: the workload certificate and the
// mesh roots come by SDS under Istio's names ("default", "ROOTCA"), which the agent
// serves in process (internal/agent/identity); clusters originate TLS through a
// transport_socket or Istio's auto-mTLS transport_socket_matches (endpoints labelled
// tlsMode: istio in filter_metadata["envoy.transport_socket_match"]).

const (
	upstreamTLSURL       = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
	transportMatchFilter = "envoy.transport_socket_match"
	errSDSName           = "only the workload identity's SDS resources are served (%q for the certificate, %q for the roots); a Gateway's credentialName is not fetched by SDS (kubernetes://<name>, as istiod sends it): Lucid's control plane sends its certificate inline"
)

// decodeSDSCertificate accepts tls_certificate_sds_secret_configs naming the workload
// certificate (Istio's "default"); other names need an SDS server Lucid does not run.
func decodeSDSCertificate(cs []*tlspb.SdsSecretConfig) (string, error) {
	if len(cs) != 1 {
		return "", fmt.Errorf("tls_certificate_sds_secret_configs: want one entry, got %d", len(cs))
	}
	if n := cs[0].GetName(); n != resource.SDSWorkloadCertificate {
		return "", fmt.Errorf("tls_certificate_sds_secret_configs[0].name: %q: "+errSDSName, n, resource.SDSWorkloadCertificate, resource.SDSRootCA)
	}
	return resource.SDSWorkloadCertificate, nil
}

// decodeSDSValidation accepts validation_context_sds_secret_config or
// combined_validation_context naming the mesh roots ("ROOTCA"); the combined form's
// default_validation_context adds the SAN matchers.
func decodeSDSValidation(c *tlspb.CommonTlsContext) (name string, sans []resource.SANMatcher, err error) {
	sds := c.GetValidationContextSdsSecretConfig()
	var def *tlspb.CertificateValidationContext
	field := "validation_context_sds_secret_config"
	if cv := c.GetCombinedValidationContext(); cv != nil {
		sds, def, field = cv.GetValidationContextSdsSecretConfig(), cv.GetDefaultValidationContext(), "combined_validation_context.validation_context_sds_secret_config"
	}
	if n := sds.GetName(); n != resource.SDSRootCA {
		return "", nil, fmt.Errorf("%s.name: %q: "+errSDSName, field, n, resource.SDSWorkloadCertificate, resource.SDSRootCA)
	}
	if def != nil {
		if def.GetTrustedCa() != nil {
			return "", nil, fmt.Errorf("combined_validation_context.default_validation_context.trusted_ca: the roots come from %q", resource.SDSRootCA)
		}
		var d resource.DownstreamTLS
		d.TrustedCA = resource.DataSource{Inline: []byte("sds")} // decodeValidation checks SANs have roots
		if err := decodeValidation(def, &d); err != nil {
			return "", nil, fmt.Errorf("combined_validation_context.default_validation_context.%w", err)
		}
		sans = d.SANs
	}
	return resource.SDSRootCA, sans, nil
}

// decodeUpstreamTransport converts a cluster's (or a match's) transport_socket: nil for
// raw_buffer, the UpstreamTlsContext for envoy.transport_sockets.tls.
func decodeUpstreamTransport(ts *corepb.TransportSocket) (*resource.UpstreamTLS, error) {
	if ts == nil || ts.GetName() == rawBufferSocket {
		return nil, nil
	}
	url := ts.GetTypedConfig().GetTypeUrl()
	if ts.GetName() != tlsSocketName && url != upstreamTLSURL {
		return nil, fmt.Errorf("transport_socket: %q is not supported", ts.GetName())
	}
	if url != upstreamTLSURL {
		return nil, fmt.Errorf("transport_socket.typed_config: %q is not an UpstreamTlsContext", url)
	}
	var u tlspb.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&u); err != nil {
		return nil, fmt.Errorf("transport_socket.typed_config: %w", err)
	}
	if err := validate(&u); err != nil {
		return nil, fmt.Errorf("transport_socket.typed_config: %w", err)
	}
	out, err := decodeUpstreamTLS(&u)
	if err != nil {
		return nil, fmt.Errorf("transport_socket.typed_config.%w", err)
	}
	return out, nil
}

func decodeUpstreamTLS(u *tlspb.UpstreamTlsContext) (*resource.UpstreamTLS, error) {
	out := &resource.UpstreamTLS{SNI: u.GetSni()}
	c := u.GetCommonTlsContext()
	switch {
	case c.GetTlsCertificateProviderInstance() != nil || c.GetTlsCertificateCertificateProviderInstance() != nil || c.GetTlsCertificateCertificateProvider() != nil: //nolint:staticcheck // SA1019: a config that sets it must still be rejected
		return nil, fmt.Errorf("common_tls_context: certificate providers are not supported")
	case c.GetCustomHandshaker() != nil:
		return nil, fmt.Errorf("common_tls_context.custom_handshaker: not supported")
	case c.GetKeyLog() != nil:
		return nil, fmt.Errorf("common_tls_context.key_log: not supported")
	}
	out.ALPN = c.GetAlpnProtocols()
	// The shared downstream decoders fill a DownstreamTLS; its fields are copied over.
	var d resource.DownstreamTLS
	sds, err := decodeSDS(c, &d, false)
	if err != nil {
		return nil, err
	}
	if !sds {
		for i, tc := range c.GetTlsCertificates() {
			pair, err := decodeCertificate(tc)
			if err != nil {
				return nil, fmt.Errorf("common_tls_context.tls_certificates[%d].%w", i, err)
			}
			d.Certificates = append(d.Certificates, pair)
		}
		if v := c.GetValidationContext(); v != nil {
			if err := decodeValidation(v, &d); err != nil {
				return nil, fmt.Errorf("common_tls_context.validation_context.%w", err)
			}
		}
	}
	if err := decodeTLSParams(c.GetTlsParams(), &d); err != nil {
		return nil, fmt.Errorf("common_tls_context.tls_params.%w", err)
	}
	out.Certificates, out.CertificateSDS = d.Certificates, d.CertificateSDS
	out.TrustedCA, out.ValidationSDS, out.SANs = d.TrustedCA, d.ValidationSDS, d.SANs
	out.MinVersion, out.MaxVersion = d.MinVersion, d.MaxVersion
	return out, nil
}

// decodeSDS fills the SDS parts of a TLS context's common_tls_context and reports
// whether it uses SDS at all.
func decodeSDS(c *tlspb.CommonTlsContext, d *resource.DownstreamTLS, server bool) (bool, error) {
	certSDS := len(c.GetTlsCertificateSdsSecretConfigs()) > 0
	valSDS := c.GetValidationContextSdsSecretConfig() != nil || c.GetCombinedValidationContext() != nil
	if !certSDS && !valSDS {
		return false, nil
	}
	var err error
	if server && certSDS && len(c.GetTlsCertificates()) > 0 {
		return true, fmt.Errorf("common_tls_context: the certificate comes from SDS %q or from tls_certificates, not both", resource.SDSWorkloadCertificate)
	}
	if certSDS {
		if d.CertificateSDS, err = decodeSDSCertificate(c.GetTlsCertificateSdsSecretConfigs()); err != nil {
			return true, fmt.Errorf("common_tls_context.%w", err)
		}
	}
	if valSDS {
		if d.ValidationSDS, d.SANs, err = decodeSDSValidation(c); err != nil {
			return true, fmt.Errorf("common_tls_context.%w", err)
		}
	}
	return true, nil
}

// decodeClusterTransport fills a cluster's TLS and TLSMatches.
func decodeClusterTransport(c *clusterpb.Cluster, out *resource.Cluster) error {
	if c.GetTransportSocketMatcher() != nil {
		return fmt.Errorf("transport_socket_matcher: not supported (transport_socket_matches is)")
	}
	var err error
	if out.TLS, err = decodeUpstreamTransport(c.GetTransportSocket()); err != nil {
		return err
	}
	for i, m := range c.GetTransportSocketMatches() {
		tm := resource.TransportSocketMatch{Name: m.GetName(), Match: map[string]string{}}
		fields := m.GetMatch().GetFields()
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, ok := fields[k].GetKind().(*structpb.Value_StringValue)
			if !ok {
				return fmt.Errorf("transport_socket_matches[%d].match[%q]: only string values are supported", i, k)
			}
			tm.Match[k] = v.StringValue
		}
		if tm.TLS, err = decodeUpstreamTransport(m.GetTransportSocket()); err != nil {
			return fmt.Errorf("transport_socket_matches[%d].%w", i, err)
		}
		out.TLSMatches = append(out.TLSMatches, tm)
	}
	info := filterMetadata(c.GetMetadata(), "lucid")["tls"].GetStructValue().GetFields()
	out.Info.TLSMode, out.Info.TLSSource = stringField(info, "mode"), stringField(info, "source")
	return nil
}

// decodeEndpointTransport reads what an endpoint's transport socket match looks at, and
// Lucid's note of its PeerAuthentication mode.
func decodeEndpointTransport(lbe *endpointpb.LbEndpoint, out *resource.Endpoint) error {
	for k, v := range filterMetadata(lbe.GetMetadata(), transportMatchFilter) {
		sv, ok := v.GetKind().(*structpb.Value_StringValue)
		if !ok {
			return fmt.Errorf("metadata.filter_metadata[%q][%q]: only string values are supported", transportMatchFilter, k)
		}
		if out.TransportMatch == nil {
			out.TransportMatch = map[string]string{}
		}
		out.TransportMatch[k] = sv.StringValue
	}
	mtls := filterMetadata(lbe.GetMetadata(), "lucid")["mtls"].GetStructValue().GetFields()
	out.MTLSMode, out.PeerAuthentication = stringField(mtls, "mode"), stringField(mtls, "policy")
	return nil
}

// decodeChainMTLS reads Lucid's note of an inbound chain's PeerAuthentication mode
// (filter_metadata["lucid"]["mtls"]), for the explanation of a refused connection.
func decodeChainMTLS(fc *listenerpb.FilterChain, out *resource.FilterChain) {
	mtls := filterMetadata(fc.GetMetadata(), "lucid")["mtls"].GetStructValue().GetFields()
	out.MTLSMode, out.PeerAuthentication = stringField(mtls, "mode"), stringField(mtls, "policy")
}
