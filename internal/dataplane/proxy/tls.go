package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// TLS termination on a filter chain (DownstreamTlsContext). The certificates and CA are
// read when a configuration is applied: a file that cannot be read or parsed fails that
// Apply with an error naming the listener, the chain and the file, so the xDS client
// NACKs it and the configuration in force keeps serving. Files that change afterwards are
// read again at the next handshake (tls_reload.go).

// chainTLS maps every filter chain that terminates TLS to its server configuration.
type chainTLS map[*resource.FilterChain]*tls.Config

// loadTLS builds the TLS configuration of every chain of s that terminates TLS.
func loadTLS(s *resource.Snapshot, m MTLS, log *slog.Logger) (chainTLS, error) {
	out := chainTLS{}
	names := make([]string, 0, len(s.Listeners))
	for n := range s.Listeners {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		l := s.Listeners[name]
		for i := range l.FilterChains {
			fc := &l.FilterChains[i]
			if fc.TLS == nil {
				continue
			}
			cfg, err := chainServerTLS(fc.TLS, m, log, name, chainName(fc, i)) // mtls.go
			if err != nil {
				return nil, fmt.Errorf("listener %q: filter chain %s: %w", name, chainName(fc, i), err)
			}
			out[fc] = cfg
		}
		if fc := l.DefaultChain; fc != nil && fc.TLS != nil {
			cfg, err := chainServerTLS(fc.TLS, m, log, name, "default") // mtls.go
			if err != nil {
				return nil, fmt.Errorf("listener %q: default filter chain: %w", name, err)
			}
			out[fc] = cfg
		}
	}
	return out, nil
}

func chainName(fc *resource.FilterChain, i int) string {
	if fc.Name != "" {
		return fmt.Sprintf("%q", fc.Name)
	}
	return fmt.Sprintf("[%d]", i)
}

// readSource returns the bytes of a DataSource, reading its file.
func readSource(what string, d resource.DataSource) ([]byte, error) {
	if d.Filename == "" {
		return d.Inline, nil
	}
	b, err := os.ReadFile(d.Filename)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

var tlsVersions = map[resource.TLSVersion]uint16{
	resource.TLS10: tls.VersionTLS10,
	resource.TLS11: tls.VersionTLS11,
	resource.TLS12: tls.VersionTLS12,
	resource.TLS13: tls.VersionTLS13,
}

// serverTLSConfig turns a DownstreamTlsContext into a tls.Config.
func serverTLSConfig(d *resource.DownstreamTLS) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12, // Envoy's server default (TLS_AUTO)
		MaxVersion: tls.VersionTLS13,
		NextProtos: d.ALPN,
	}
	if v, ok := tlsVersions[d.MinVersion]; ok {
		cfg.MinVersion = v
	}
	if v, ok := tlsVersions[d.MaxVersion]; ok {
		cfg.MaxVersion = v
	}
	certs, err := loadCertificates(d.Certificates)
	if err != nil {
		return nil, err
	}
	cfg.Certificates = certs
	if len(cfg.Certificates) == 0 {
		return nil, errors.New("no certificate")
	}
	suites, err := cipherSuites(d.CipherSuites)
	if err != nil {
		return nil, fmt.Errorf("cipher_suites: %w", err)
	}
	cfg.CipherSuites = suites
	if d.TrustedCA.IsSet() {
		pool, err := loadTrustedCA(d.TrustedCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if d.RequireClientCertificate {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		if len(d.SANs) > 0 {
			sans := d.SANs
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return nil
				}
				return verifySAN(cs.PeerCertificates[0], sans)
			}
		}
	}
	return cfg, nil
}

// loadCertificates reads certificate pairs (files or inline PEM).
func loadCertificates(pairs []resource.CertificatePair) ([]tls.Certificate, error) {
	var out []tls.Certificate
	for _, cp := range pairs {
		chain, err := readSource("certificate_chain", cp.Chain)
		if err != nil {
			return nil, err
		}
		key, err := readSource("private_key", cp.PrivateKey)
		if err != nil {
			return nil, err
		}
		cert, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return nil, fmt.Errorf("certificate_chain %s with private_key %s: %w", cp.Chain.Where(), cp.PrivateKey.Where(), err)
		}
		out = append(out, cert)
	}
	return out, nil
}

// loadTrustedCA reads a trusted_ca into a pool.
func loadTrustedCA(d resource.DataSource) (*x509.CertPool, error) {
	pem, err := readSource("trusted_ca", d)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("trusted_ca %s: no PEM certificate in it", d.Where())
	}
	return pool, nil
}

// errSAN is a client certificate whose subject alternative names match none of the
// configured matchers (Envoy: ssl.fail_verify_san).
var errSAN = errors.New("client certificate's subject alternative names match none of the configured subjectAltNames")

// verifySAN checks a client certificate's SANs against the validation context's
// matchers: any SAN matching any matcher accepts it.
func verifySAN(c *x509.Certificate, ms []resource.SANMatcher) error {
	values := func(t resource.SANType) []string {
		var out []string
		if t == resource.SANAny || t == resource.SANDNS {
			out = append(out, c.DNSNames...)
		}
		if t == resource.SANAny || t == resource.SANEmail {
			out = append(out, c.EmailAddresses...)
		}
		if t == resource.SANAny || t == resource.SANURI {
			for _, u := range c.URIs {
				out = append(out, u.String())
			}
		}
		if t == resource.SANAny || t == resource.SANIP {
			for _, ip := range c.IPAddresses {
				out = append(out, ip.String())
			}
		}
		return out
	}
	for _, m := range ms {
		for _, v := range values(m.Type) {
			if route.MatchString(&m.Matcher, v) {
				return nil
			}
		}
	}
	return errSAN
}

// cipherSuites maps Envoy's (OpenSSL/BoringSSL) cipher names, and IANA names, to Go's
// suites. An equal-preference group "[A|B]" counts as its members. TLS 1.3 suites are not
// configurable (as in Envoy, cipher_suites applies to TLS 1.2 and below).
func cipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return nil, nil
	}
	byName := cipherNames()
	var out []uint16
	for _, entry := range names {
		for n := range strings.SplitSeq(strings.Trim(entry, "[]"), "|") {
			if strings.HasPrefix(n, "TLS_AES_") || strings.HasPrefix(n, "TLS_CHACHA20_") {
				continue // TLS 1.3
			}
			id, ok := byName[n]
			if !ok {
				return nil, fmt.Errorf("%q is not a cipher suite this proxy supports", n)
			}
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no TLS 1.2 cipher suite left")
	}
	return out, nil
}

var cipherNames = sync.OnceValue(func() map[string]uint16 {
	m := map[string]uint16{
		"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[cs.Name] = cs.ID
	}
	return m
})

// tlsStats are a listener's TLS counters, with Envoy's names under
// listener.<listener>.ssl.
type tlsStats struct {
	handshake       atomic.Uint64 // ssl.handshake
	connectionError atomic.Uint64 // ssl.connection_error
	noCert          atomic.Uint64 // ssl.fail_verify_no_cert
	verifyError     atomic.Uint64 // ssl.fail_verify_error
	verifySAN       atomic.Uint64 // ssl.fail_verify_san
}

// tlsCounters holds tlsStats per listener name; entries are never removed (counters
// are cumulative, as Envoy's survive a listener update).
type tlsCounters struct{ m sync.Map }

func (c *tlsCounters) of(listener string) *tlsStats {
	if s, ok := c.m.Load(listener); ok {
		return s.(*tlsStats)
	}
	s, _ := c.m.LoadOrStore(listener, &tlsStats{})
	return s.(*tlsStats)
}

// EachTLSStat calls emit for every TLS counter of every listener that terminated TLS,
// with Envoy's names: listener.<name>.ssl.handshake, .connection_error,
// .fail_verify_no_cert, .fail_verify_error, .fail_verify_san.
func (p *Proxy) EachTLSStat(emit func(name string, value uint64)) {
	p.tlsStats.m.Range(func(k, v any) bool {
		s, prefix := v.(*tlsStats), "listener."+k.(string)+".ssl."
		emit(prefix+"handshake", s.handshake.Load())
		emit(prefix+"connection_error", s.connectionError.Load())
		emit(prefix+"fail_verify_no_cert", s.noCert.Load())
		emit(prefix+"fail_verify_error", s.verifyError.Load())
		emit(prefix+"fail_verify_san", s.verifySAN.Load())
		return true
	})
}

// countHandshakeError classifies a failed handshake into the listener's counters and
// returns Envoy's reason for the log.
func countHandshakeError(s *tlsStats, err error) string {
	s.connectionError.Add(1)
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.Is(err, errSAN):
		s.verifySAN.Add(1)
		return "client certificate rejected: " + errSAN.Error()
	case strings.Contains(msg, "client didn't provide a certificate"):
		s.noCert.Add(1)
		return "client certificate required but the client sent none (MUTUAL)"
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &ci):
		s.verifyError.Add(1)
		return "client certificate rejected: " + msg
	}
	return msg
}
