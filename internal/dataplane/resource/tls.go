package resource

// TLS on a listener's filter chain: what a router (ingress gateway) needs to terminate TLS
// and to pick a chain by SNI.

// TLSVersion is extensions.transport_sockets.tls.v3.TlsParameters.TlsProtocol.
type TLSVersion int

// The TLS versions (TLS_AUTO, TLSv1_0 … TLSv1_3). TLSAuto means Envoy's default: at
// least TLS 1.2 and at most TLS 1.3 for a server.
const (
	TLSAuto TLSVersion = iota
	TLS10
	TLS11
	TLS12
	TLS13
)

// String is the Envoy enum name.
func (v TLSVersion) String() string {
	switch v {
	case TLS10:
		return "TLSv1_0"
	case TLS11:
		return "TLSv1_1"
	case TLS12:
		return "TLSv1_2"
	case TLS13:
		return "TLSv1_3"
	}
	return "TLS_AUTO"
}

// DataSource is config.core.v3.DataSource: a file read when the proxy applies the
// configuration, or the bytes themselves. Exactly one of Filename and Inline is set.
type DataSource struct {
	Filename string // filename
	Inline   []byte // inline_bytes or inline_string
}

// IsSet reports whether the source names a file or holds bytes.
func (d DataSource) IsSet() bool { return d.Filename != "" || len(d.Inline) > 0 }

// Where names the source for error messages: the file, or "inline bytes".
func (d DataSource) Where() string {
	if d.Filename != "" {
		return d.Filename
	}
	return "inline bytes"
}

// CertificatePair is extensions.transport_sockets.tls.v3.TlsCertificate.
type CertificatePair struct {
	Chain      DataSource // certificate_chain (PEM)
	PrivateKey DataSource // private_key (PEM)
}

// SANType is extensions.transport_sockets.tls.v3.SubjectAltNameMatcher.SanType.
type SANType int

// The SAN types; SANAny matches every type (the deprecated match_subject_alt_names).
const (
	SANAny SANType = iota
	SANEmail
	SANDNS
	SANURI
	SANIP
)

// SANMatcher is extensions.transport_sockets.tls.v3.SubjectAltNameMatcher (or an entry of
// the deprecated match_subject_alt_names, Type SANAny).
type SANMatcher struct {
	Type    SANType       // san_type
	Matcher StringMatcher // matcher
}

// DownstreamTLS is extensions.transport_sockets.tls.v3.DownstreamTlsContext, the
// transport_socket "envoy.transport_sockets.tls" of a filter chain: the chain terminates
// TLS with these settings.
type DownstreamTLS struct {
	// common_tls_context.tls_certificates; the proxy serves the first whose key type the
	// client supports (Go's tls picks among several).
	Certificates []CertificatePair
	// common_tls_context.alpn_protocols, in preference order (Istio: h2, http/1.1).
	ALPN []string
	// common_tls_context.tls_params.
	MinVersion   TLSVersion // tls_minimum_protocol_version (TLS_AUTO: TLS 1.2)
	MaxVersion   TLSVersion // tls_maximum_protocol_version (TLS_AUTO: TLS 1.3)
	CipherSuites []string   // cipher_suites, OpenSSL names (TLS 1.2 and below)

	// common_tls_context.validation_context: trusted_ca and
	// match_typed_subject_alt_names (or the deprecated match_subject_alt_names).
	TrustedCA DataSource
	SANs      []SANMatcher
	// require_client_certificate: a client without a certificate fails the handshake.
	RequireClientCertificate bool

	// SDS resources instead of files (the sidecar's mutual TLS): the certificate
	// (SDSWorkloadCertificate) and the validation context (SDSRootCA), from the agent's
	// workload identity.
	CertificateSDS, ValidationSDS string
}

// SDS resource names of the workload identity (Istio's agent serves them from its secret
// cache; Lucid's agent in process): the workload certificate and the mesh roots.
const (
	SDSWorkloadCertificate = "default"
	SDSRootCA              = "ROOTCA"
)

// UpstreamTLS is extensions.transport_sockets.tls.v3.UpstreamTlsContext, a cluster's
// transport_socket "envoy.transport_sockets.tls": connections to the cluster's endpoints
// originate TLS with these settings.
type UpstreamTLS struct {
	SNI  string   // sni
	ALPN []string // common_tls_context.alpn_protocols (Istio's mesh ALPNs for ISTIO_MUTUAL)

	// The client certificate: files or inline PEM (MUTUAL), or the SDS resource
	// CertificateSDS (SDSWorkloadCertificate: ISTIO_MUTUAL's workload certificate).
	Certificates   []CertificatePair
	CertificateSDS string

	// The server's certificate is verified against TrustedCA, or the SDS resource
	// ValidationSDS (SDSRootCA: the mesh roots), and its SANs against SANs; without any
	// of them (no validation context: insecureSkipVerify) it is not verified at all, as
	// Envoy does.
	TrustedCA     DataSource
	ValidationSDS string
	SANs          []SANMatcher

	MinVersion TLSVersion // tls_params (TLS_AUTO: TLS 1.2)
	MaxVersion TLSVersion // tls_params (TLS_AUTO: TLS 1.3)
}

// Verifies reports whether the server's certificate is checked (a validation context).
func (u *UpstreamTLS) Verifies() bool {
	return u.TrustedCA.IsSet() || u.ValidationSDS != "" || len(u.SANs) > 0
}

// TransportSocketMatch is one of a cluster's transport_socket_matches: endpoints whose
// metadata filter_metadata["envoy.transport_socket_match"] carries every Match entry use
// TLS (nil: raw_buffer, plaintext). Istio's auto mutual TLS sends "tlsMode-istio" with
// match {tlsMode: istio} and "tlsMode-disabled" with an empty match.
type TransportSocketMatch struct {
	Name  string
	Match map[string]string
	TLS   *UpstreamTLS
}

// TransportFor is the transport socket Envoy uses for ep in c: the first of
// TLSMatches whose Match ep's TransportMatch metadata carries, else TLS. nil is
// plaintext.
func (c *Cluster) TransportFor(ep *Endpoint) *UpstreamTLS {
	for i := range c.TLSMatches {
		m := &c.TLSMatches[i]
		ok := true
		for k, v := range m.Match {
			if ep.TransportMatch[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return m.TLS
		}
	}
	return c.TLS
}
