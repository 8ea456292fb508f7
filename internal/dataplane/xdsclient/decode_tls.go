package xdsclient

import (
	"fmt"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// A filter chain's TLS transport socket (DownstreamTlsContext), as a router's HTTPS, TLS
// and MUTUAL servers use it. Certificates come from files or inline PEM; the files are
// read by the proxy when it applies the configuration (a missing file fails that Apply,
// which NACKs) and again when they change; a Gateway credentialName's certificate arrives
// inline. By SDS only the workload identity's resources are served (decode_mtls.go).

const (
	tlsSocketName      = "envoy.transport_sockets.tls"
	downstreamTLSURL   = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
	errSDSNotSupported = "not supported: only the workload identity's certificates come by SDS"
)

// decodeTransportSocket converts a filter chain's transport_socket: nil for raw_buffer,
// the TLS context for envoy.transport_sockets.tls.
func decodeTransportSocket(ts *corepb.TransportSocket) (*resource.DownstreamTLS, error) {
	if ts == nil || ts.GetName() == rawBufferSocket {
		return nil, nil
	}
	url := ts.GetTypedConfig().GetTypeUrl()
	if ts.GetName() != tlsSocketName && url != downstreamTLSURL {
		return nil, fmt.Errorf("transport_socket: %q is not supported", ts.GetName())
	}
	if url != downstreamTLSURL {
		return nil, fmt.Errorf("transport_socket.typed_config: %q is not a DownstreamTlsContext", url)
	}
	var d tlspb.DownstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&d); err != nil {
		return nil, fmt.Errorf("transport_socket.typed_config: %w", err)
	}
	if err := validate(&d); err != nil {
		return nil, fmt.Errorf("transport_socket.typed_config: %w", err)
	}
	out, err := decodeDownstreamTLS(&d)
	if err != nil {
		return nil, fmt.Errorf("transport_socket.typed_config.%w", err)
	}
	return out, nil
}

func decodeDownstreamTLS(d *tlspb.DownstreamTlsContext) (*resource.DownstreamTLS, error) {
	switch {
	case d.GetSessionTicketKeysSdsSecretConfig() != nil:
		return nil, fmt.Errorf("session_ticket_keys_sds_secret_config: %s", errSDSNotSupported)
	case d.GetSessionTicketKeys() != nil:
		return nil, fmt.Errorf("session_ticket_keys: not supported")
	case d.GetOcspStaplePolicy() == tlspb.DownstreamTlsContext_STRICT_STAPLING || d.GetOcspStaplePolicy() == tlspb.DownstreamTlsContext_MUST_STAPLE:
		return nil, fmt.Errorf("ocsp_staple_policy: %s is not supported", d.GetOcspStaplePolicy())
	}
	out := &resource.DownstreamTLS{RequireClientCertificate: d.GetRequireClientCertificate().GetValue()}
	c := d.GetCommonTlsContext()
	if c == nil {
		return nil, fmt.Errorf("common_tls_context: required")
	}
	_, err := decodeSDS(c, out, true) // decode_mtls.go: the workload identity's "default" and "ROOTCA"
	if err != nil {
		return nil, err
	}
	switch {
	case c.GetTlsCertificateProviderInstance() != nil || c.GetTlsCertificateCertificateProviderInstance() != nil || c.GetTlsCertificateCertificateProvider() != nil: //nolint:staticcheck // SA1019: a config that sets it must still be rejected
		return nil, fmt.Errorf("common_tls_context: certificate providers are not supported")
	case c.GetValidationContextCertificateProvider() != nil || c.GetValidationContextCertificateProviderInstance() != nil: //nolint:staticcheck // SA1019: a config that sets it must still be rejected
		return nil, fmt.Errorf("common_tls_context: certificate providers are not supported")
	case c.GetCustomHandshaker() != nil:
		return nil, fmt.Errorf("common_tls_context.custom_handshaker: not supported")
	case c.GetCustomTlsCertificateSelector() != nil:
		return nil, fmt.Errorf("common_tls_context.custom_tls_certificate_selector: not supported")
	case c.GetKeyLog() != nil:
		return nil, fmt.Errorf("common_tls_context.key_log: not supported")
	}
	for i, tc := range c.GetTlsCertificates() {
		pair, err := decodeCertificate(tc)
		if err != nil {
			return nil, fmt.Errorf("common_tls_context.tls_certificates[%d].%w", i, err)
		}
		out.Certificates = append(out.Certificates, pair)
	}
	if len(out.Certificates) == 0 && out.CertificateSDS == "" {
		return nil, fmt.Errorf("common_tls_context.tls_certificates: a server needs a certificate")
	}
	out.ALPN = c.GetAlpnProtocols()
	if err := decodeTLSParams(c.GetTlsParams(), out); err != nil {
		return nil, fmt.Errorf("common_tls_context.tls_params.%w", err)
	}
	if v := c.GetValidationContext(); v != nil {
		if err := decodeValidation(v, out); err != nil {
			return nil, fmt.Errorf("common_tls_context.validation_context.%w", err)
		}
	}
	if out.RequireClientCertificate && !out.TrustedCA.IsSet() && out.ValidationSDS == "" {
		return nil, fmt.Errorf("require_client_certificate: needs common_tls_context.validation_context.trusted_ca to verify the client's certificate")
	}
	return out, nil
}

func decodeCertificate(tc *tlspb.TlsCertificate) (resource.CertificatePair, error) {
	var out resource.CertificatePair
	switch {
	case tc.GetPkcs12() != nil:
		return out, fmt.Errorf("pkcs12: not supported (give certificate_chain and private_key as PEM)")
	case tc.GetPrivateKeyProvider() != nil:
		return out, fmt.Errorf("private_key_provider: not supported")
	case tc.GetPassword() != nil:
		return out, fmt.Errorf("password: encrypted private keys are not supported")
	case tc.GetWatchedDirectory() != nil:
		return out, fmt.Errorf("watched_directory: not supported (the proxy reads certificate files again when they change)")
	}
	var err error
	if out.Chain, err = decodeDataSource(tc.GetCertificateChain()); err != nil {
		return out, fmt.Errorf("certificate_chain.%w", err)
	}
	if out.PrivateKey, err = decodeDataSource(tc.GetPrivateKey()); err != nil {
		return out, fmt.Errorf("private_key.%w", err)
	}
	return out, nil
}

// decodeDataSource converts a config.core.v3.DataSource that must be set.
func decodeDataSource(ds *corepb.DataSource) (resource.DataSource, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corepb.DataSource_Filename:
		if s.Filename == "" {
			return resource.DataSource{}, fmt.Errorf("filename: empty")
		}
		return resource.DataSource{Filename: s.Filename}, nil
	case *corepb.DataSource_InlineBytes:
		return resource.DataSource{Inline: s.InlineBytes}, nil
	case *corepb.DataSource_InlineString:
		return resource.DataSource{Inline: []byte(s.InlineString)}, nil
	case *corepb.DataSource_EnvironmentVariable:
		return resource.DataSource{}, fmt.Errorf("environment_variable: not supported")
	case nil:
		return resource.DataSource{}, fmt.Errorf("specifier: required (filename, inline_bytes or inline_string)")
	default:
		return resource.DataSource{}, fmt.Errorf("specifier: %T is not supported", s)
	}
}

var tlsVersions = map[tlspb.TlsParameters_TlsProtocol]resource.TLSVersion{
	tlspb.TlsParameters_TLS_AUTO: resource.TLSAuto,
	tlspb.TlsParameters_TLSv1_0:  resource.TLS10,
	tlspb.TlsParameters_TLSv1_1:  resource.TLS11,
	tlspb.TlsParameters_TLSv1_2:  resource.TLS12,
	tlspb.TlsParameters_TLSv1_3:  resource.TLS13,
}

func decodeTLSParams(p *tlspb.TlsParameters, out *resource.DownstreamTLS) error {
	if p == nil {
		return nil
	}
	var ok bool
	if out.MinVersion, ok = tlsVersions[p.GetTlsMinimumProtocolVersion()]; !ok {
		return fmt.Errorf("tls_minimum_protocol_version: %s is not supported", p.GetTlsMinimumProtocolVersion())
	}
	if out.MaxVersion, ok = tlsVersions[p.GetTlsMaximumProtocolVersion()]; !ok {
		return fmt.Errorf("tls_maximum_protocol_version: %s is not supported", p.GetTlsMaximumProtocolVersion())
	}
	if out.MinVersion != resource.TLSAuto && out.MaxVersion != resource.TLSAuto && out.MaxVersion < out.MinVersion {
		return fmt.Errorf("tls_maximum_protocol_version: %s is below tls_minimum_protocol_version %s", out.MaxVersion, out.MinVersion)
	}
	switch {
	case len(p.GetSignatureAlgorithms()) > 0:
		return fmt.Errorf("signature_algorithms: not supported")
	case len(p.GetCompliancePolicies()) > 0:
		return fmt.Errorf("compliance_policies: not supported")
	}
	// ecdh_curves only narrows the key exchange; Go's defaults are accepted as they are.
	out.CipherSuites = p.GetCipherSuites()
	return nil
}

var sanTypes = map[tlspb.SubjectAltNameMatcher_SanType]resource.SANType{
	tlspb.SubjectAltNameMatcher_EMAIL:      resource.SANEmail,
	tlspb.SubjectAltNameMatcher_DNS:        resource.SANDNS,
	tlspb.SubjectAltNameMatcher_URI:        resource.SANURI,
	tlspb.SubjectAltNameMatcher_IP_ADDRESS: resource.SANIP,
}

func decodeValidation(v *tlspb.CertificateValidationContext, out *resource.DownstreamTLS) error {
	switch {
	case v.GetCaCertificateProviderInstance() != nil:
		return fmt.Errorf("ca_certificate_provider_instance: not supported")
	case v.GetSystemRootCerts() != nil:
		return fmt.Errorf("system_root_certs: not supported")
	case v.GetWatchedDirectory() != nil:
		return fmt.Errorf("watched_directory: not supported")
	case len(v.GetVerifyCertificateSpki()) > 0:
		return fmt.Errorf("verify_certificate_spki: not supported")
	case len(v.GetVerifyCertificateHash()) > 0:
		return fmt.Errorf("verify_certificate_hash: not supported")
	case v.GetCrl() != nil:
		return fmt.Errorf("crl: not supported")
	case v.GetCustomValidatorConfig() != nil:
		return fmt.Errorf("custom_validator_config: not supported")
	case v.GetAllowExpiredCertificate():
		return fmt.Errorf("allow_expired_certificate: not supported")
	case v.GetTrustChainVerification() != tlspb.CertificateValidationContext_VERIFY_TRUST_CHAIN:
		return fmt.Errorf("trust_chain_verification: %s is not supported", v.GetTrustChainVerification())
	}
	if ca := v.GetTrustedCa(); ca != nil {
		ds, err := decodeDataSource(ca)
		if err != nil {
			return fmt.Errorf("trusted_ca.%w", err)
		}
		out.TrustedCA = ds
	}
	for i, m := range v.GetMatchTypedSubjectAltNames() {
		t, ok := sanTypes[m.GetSanType()]
		if !ok {
			return fmt.Errorf("match_typed_subject_alt_names[%d].san_type: %s is not supported", i, m.GetSanType())
		}
		sm, err := decodeStringMatcher(m.GetMatcher())
		if err != nil {
			return fmt.Errorf("match_typed_subject_alt_names[%d].matcher.%w", i, err)
		}
		out.SANs = append(out.SANs, resource.SANMatcher{Type: t, Matcher: sm})
	}
	for i, m := range v.GetMatchSubjectAltNames() { //nolint:staticcheck // SA1019: Envoy still honours the deprecated field
		sm, err := decodeStringMatcher(m)
		if err != nil {
			return fmt.Errorf("match_subject_alt_names[%d].%w", i, err)
		}
		out.SANs = append(out.SANs, resource.SANMatcher{Type: resource.SANAny, Matcher: sm})
	}
	if len(out.SANs) > 0 && !out.TrustedCA.IsSet() {
		return fmt.Errorf("match_typed_subject_alt_names: needs trusted_ca")
	}
	return nil
}
