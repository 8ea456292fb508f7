package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Gateway validation: Istio's rules (pkg/config/validation: validateServer,
// validateServerPort, validateServerBind, validateTLSOptions), plus the port clashes
// Istio only drops at merge time (two servers of one Gateway that cannot share a port),
// which Lucid rejects so the user hears about them.

func validateGateway(o *Object, v *validator) {
	gw := o.Spec.(*networkingv1alpha3.Gateway)
	if !isDNS1123LabelAnyCase(o.Name) {
		v.errorf("metadata.name", "invalid gateway name: %q", o.Name)
	}
	if len(gw.Servers) == 0 {
		v.errorf("spec.servers", "gateway must have at least one server")
	}
	names := map[string]bool{}
	for i, s := range gw.Servers {
		p := idx("spec.servers", i)
		if s == nil {
			v.errorf(p, "server may not be null")
			continue
		}
		v.gatewayServer(p, s)
		if s.Port == nil {
			continue
		}
		if s.Port.Name != "" && names[s.Port.Name] {
			v.errorf(p+".port.name", "port names in servers must be unique: duplicate name %s", s.Port.Name)
		}
		names[s.Port.Name] = true
		v.portClash(gw.Servers, i)
	}
}

func (v *validator) gatewayServer(p string, s *networkingv1alpha3.Server) {
	if len(s.Hosts) == 0 {
		v.errorf(p+".hosts", "server config must contain at least one host")
	}
	for j, h := range s.Hosts {
		v.namespacedHost(idx(p+".hosts", j), h, true)
	}
	v.serverBind(p, s)
	v.serverTLS(p+".tls", s.Tls)
	if s.Port == nil {
		v.errorf(p+".port", "port is required")
		return
	}
	if s.Port.Name == "" {
		v.errorf(p+".port.name", "port name must be set")
	}
	if !protocols[strings.ToUpper(s.Port.Protocol)] {
		v.errorf(p+".port.protocol", "invalid protocol %q, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP", s.Port.Protocol)
	}
	if s.Port.Number != 0 || !strings.HasPrefix(s.Bind, "unix://") {
		v.port(p+".port.number", s.Port.Number)
	}
	if s.Port.TargetPort > 0 { //nolint:staticcheck // SA1019: Istio still rejects the deprecated field here
		v.errorf(p+".port.targetPort", "targetPort has no impact on Gateways")
	}
	proto := strings.ToUpper(s.Port.Protocol)
	switch {
	case tlsProtocol(proto) && s.Tls == nil:
		v.errorf(p+".tls", "server must have TLS settings for HTTPS/TLS protocols")
	case !tlsProtocol(proto) && s.Tls != nil && httpProtocol(proto):
		t := s.Tls
		passthrough := t.Mode == networkingv1alpha3.ServerTLSSettings_PASSTHROUGH || t.Mode == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH
		if !passthrough || t.CaCertificates != "" || t.PrivateKey != "" || t.ServerCertificate != "" {
			v.errorf(p+".tls", "server cannot have TLS settings for plain text HTTP ports (only httpsRedirect)")
		}
	case !tlsProtocol(proto) && s.Tls != nil:
		v.errorf(p+".tls", "server cannot have TLS settings for non HTTPS/TLS ports")
	}
	if !httpProtocol(proto) && s.Tls.GetHttpsRedirect() {
		v.warnf(p+".tls.httpsRedirect", "tls.httpsRedirect should only be used with http servers")
	}
}

// cipherSuites are the cipher suites a gateway server may name (BoringSSL's, without PSK).
var cipherSuites = map[string]bool{
	"ECDHE-ECDSA-AES128-GCM-SHA256": true, "ECDHE-RSA-AES128-GCM-SHA256": true, "ECDHE-ECDSA-AES256-GCM-SHA384": true,
	"ECDHE-RSA-AES256-GCM-SHA384": true, "ECDHE-ECDSA-CHACHA20-POLY1305": true, "ECDHE-RSA-CHACHA20-POLY1305": true,
	"ECDHE-ECDSA-AES128-SHA": true, "ECDHE-RSA-AES128-SHA": true, "ECDHE-ECDSA-AES256-SHA": true, "ECDHE-RSA-AES256-SHA": true,
	"AES128-GCM-SHA256": true, "AES256-GCM-SHA384": true, "AES128-SHA": true, "AES256-SHA": true, "DES-CBC3-SHA": true,
}

// validCipherSuite accepts "", "ALL", a known suite, and an expression starting with an
// operator ("-AES128-SHA", "+..."), which Istio passes on unparsed.
func validCipherSuite(cs string) bool {
	if cs == "" || cs == "ALL" {
		return true
	}
	if r := rune(cs[0]); !unicode.IsNumber(r) && !unicode.IsLetter(r) {
		return true
	}
	return cipherSuites[cs]
}

func tlsProtocol(p string) bool { return p == "HTTPS" || p == "TLS" }

func httpProtocol(p string) bool {
	return p == "HTTP" || p == "HTTP2" || p == "GRPC" || p == "GRPC-WEB"
}

func (v *validator) serverBind(p string, s *networkingv1alpha3.Server) {
	switch {
	case strings.HasPrefix(s.Bind, "unix://"):
		if path := strings.TrimPrefix(s.Bind, "unix://"); !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
			v.errorf(p+".bind", "%s is not an absolute path to a file", path)
		}
		if s.Port != nil && s.Port.Number != 0 {
			v.errorf(p+".port.number", "port number must be 0 for unix domain socket: %d", s.Port.Number)
		}
	case s.Bind != "" && !isIP(s.Bind):
		v.errorf(p+".bind", "%q is not a valid IP address", s.Bind)
	}
}

// serverTLS is Istio's validateTLSOptions.
func (v *validator) serverTLS(p string, t *networkingv1alpha3.ServerTLSSettings) {
	if t == nil {
		return
	}
	mode := t.Mode
	if (t.MinProtocolVersion == networkingv1alpha3.ServerTLSSettings_TLSV1_0 || t.MinProtocolVersion == networkingv1alpha3.ServerTLSSettings_TLSV1_1) && len(t.CipherSuites) == 0 {
		v.warnf(p+".minProtocolVersion", "TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.")
	}
	var invalid, dup []string
	seen := map[string]bool{}
	for _, cs := range t.CipherSuites {
		switch {
		case !validCipherSuite(cs):
			invalid = append(invalid, cs)
		case seen[cs]:
			dup = append(dup, cs)
		}
		seen[cs] = true
	}
	if len(invalid) > 0 {
		slices.Sort(invalid)
		v.warnf(p+".cipherSuites", "ignoring invalid cipher suites: %v", slices.Compact(invalid))
	}
	if len(dup) > 0 {
		slices.Sort(dup)
		v.warnf(p+".cipherSuites", "ignoring duplicate cipher suites: %v", slices.Compact(dup))
	}
	if mode == networkingv1alpha3.ServerTLSSettings_ISTIO_MUTUAL {
		for _, f := range []struct {
			field string
			set   bool
			what  string
		}{
			{"serverCertificate", t.ServerCertificate != "", "server certificate"}, {"privateKey", t.PrivateKey != "", "private key"},
			{"caCertificates", t.CaCertificates != "", "CA bundle"}, {"tlsCertificates", len(t.TlsCertificates) > 0, "tlsCertificates"},
			{"credentialName", t.CredentialName != "", "credentialName"}, {"credentialNames", len(t.CredentialNames) > 0, "credentialNames"},
		} {
			if f.set {
				v.errorf(p+"."+f.field, "ISTIO_MUTUAL TLS cannot have associated %s", f.what)
			}
		}
		return
	}
	passthrough := mode == networkingv1alpha3.ServerTLSSettings_PASSTHROUGH || mode == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH
	if passthrough && (t.ServerCertificate != "" || t.PrivateKey != "" || t.CaCertificates != "" || t.CredentialName != "" || t.CaCrl != "" ||
		len(t.TlsCertificates) > 0 || len(t.CredentialNames) > 0) {
		v.warnf(p+".mode", "%v mode does not use certificates, they will be ignored", mode)
	}
	sources := 0
	if t.ServerCertificate != "" && t.PrivateKey != "" {
		sources++
	}
	if t.CredentialName != "" {
		sources++
	}
	if len(t.CredentialNames) > 0 {
		sources++
	}
	if len(t.TlsCertificates) > 0 {
		sources++
	}
	if sources > 1 {
		v.errorf(p, "only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified")
	}
	terminates := mode == networkingv1alpha3.ServerTLSSettings_SIMPLE || mode == networkingv1alpha3.ServerTLSSettings_MUTUAL ||
		mode == networkingv1alpha3.ServerTLSSettings_OPTIONAL_MUTUAL
	if terminates && (t.CredentialName != "" || len(t.CredentialNames) > 0) {
		return // credentials come from a Secret
	}
	if terminates {
		prefix := "SIMPLE TLS"
		if mode != networkingv1alpha3.ServerTLSSettings_SIMPLE {
			prefix = "MUTUAL TLS"
			if t.CaCertificates == "" {
				v.errorf(p+".caCertificates", "%s requires a client CA bundle", prefix)
			}
		}
		if len(t.TlsCertificates) > 2 {
			v.warnf(p+".tlsCertificates", "%s can support up to 2 server certificates", prefix)
		}
		if len(t.TlsCertificates) == 0 {
			if t.ServerCertificate == "" {
				v.errorf(p+".serverCertificate", "%s requires a server certificate (or credentialName)", prefix)
			}
			if t.PrivateKey == "" {
				v.errorf(p+".privateKey", "%s requires a private key (or credentialName)", prefix)
			}
		}
		for i, c := range t.TlsCertificates {
			if c.GetServerCertificate() == "" {
				v.errorf(idx(p+".tlsCertificates", i)+".serverCertificate", "%s requires a server certificate", prefix)
			}
			if c.GetPrivateKey() == "" {
				v.errorf(idx(p+".tlsCertificates", i)+".privateKey", "%s requires a private key", prefix)
			}
		}
	}
	if t.CaCrl != "" && t.CredentialName != "" {
		v.errorf(p+".caCrl", "CRL is not supported with credentialName. CRL has to be specified in the credential")
	}
	if t.CaCrl != "" && mode == networkingv1alpha3.ServerTLSSettings_SIMPLE {
		v.errorf(p+".caCrl", "CRL is not supported with SIMPLE TLS")
	}
}

// portClash rejects server i when an earlier server of the same Gateway holds its port
// in a way Istio's merge would drop server i for: a plaintext port (first server without
// TLS settings, or HTTP with httpsRedirect) takes further HTTP servers only; a TLS port
// takes further servers with TLS settings only; and two servers with TLS settings on one
// port may not share a host (their filter chains would match the same SNI).
func (v *validator) portClash(servers []*networkingv1alpha3.Server, i int) {
	s := servers[i]
	p := idx("spec.servers", i)
	proto := strings.ToUpper(s.Port.Protocol)
	first := -1
	for j := 0; j < i; j++ {
		o := servers[j]
		if o == nil || o.Port == nil || o.Port.Number != s.Port.Number {
			continue
		}
		if first < 0 {
			first = j
		}
		if s.Tls == nil || o.Tls == nil {
			continue
		}
		for k, h := range s.Hosts {
			for _, oh := range o.Hosts {
				if oh == h {
					v.errorf(idx(p+".hosts", k), "host %q is already served on port %d by spec.servers[%d]; two TLS servers on one port cannot match the same SNI host", h, s.Port.Number, j)
				}
			}
		}
	}
	if first < 0 {
		return
	}
	f := servers[first]
	fproto := strings.ToUpper(f.Port.Protocol)
	firstTLS := f.Tls != nil && !httpProtocol(fproto)
	switch {
	case !firstTLS && (!httpProtocol(fproto) || !httpProtocol(proto)):
		v.errorf(p+".port.protocol", "port %d is already used by spec.servers[%d] with protocol %s; %s",
			s.Port.Number, first, f.Port.Protocol, clashHint(fproto))
	case firstTLS && s.Tls == nil:
		v.errorf(p+".tls", "port %d is already used by spec.servers[%d] with TLS (%s); a server without tls settings cannot share it",
			s.Port.Number, first, f.Port.Protocol)
	}
}

func clashHint(first string) string {
	if httpProtocol(first) {
		return "only HTTP, HTTP2 and GRPC servers can share a plaintext HTTP port"
	}
	return fmt.Sprintf("a %s port serves one server only", first)
}
