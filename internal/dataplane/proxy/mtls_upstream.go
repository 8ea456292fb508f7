package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Mutual TLS between sidecars, the outbound side: the pool asks, for each new
// connection, which transport socket applies (the cluster's, or the
// transport_socket_matches entry of the endpoint: Istio's auto mTLS sends mutual TLS only
// to endpoints labelled tlsMode: istio) and gets the client configuration built here.

// UpstreamTLS is the pool's TLS decision for the clusters of clusters, with the workload
// identity m for ISTIO_MUTUAL (nil: the sidecar has none).
func UpstreamTLS(clusters *cluster.Manager, m MTLS) pool.UpstreamTLS {
	return func(name, addr string) (*tls.Config, error) {
		cl := clusters.Get(name)
		if cl == nil {
			return nil, nil
		}
		c := cl.Config()
		if c.TLS == nil && len(c.TLSMatches) == 0 {
			return nil, nil
		}
		ep := &resource.Endpoint{}
		if len(c.TLSMatches) > 0 {
			for _, h := range cl.Hosts() {
				if h.Addr == addr {
					ep = &h.Endpoint
					break
				}
			}
		}
		u := c.TransportFor(ep)
		if u == nil {
			return nil, nil
		}
		cfg, err := clientTLSConfig(u, m)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", name, err)
		}
		return cfg, nil
	}
}

// clientTLSConfig turns an UpstreamTlsContext into a client configuration.
func clientTLSConfig(u *resource.UpstreamTLS, m MTLS) (*tls.Config, error) {
	var cfg *tls.Config
	if u.CertificateSDS != "" || u.ValidationSDS != "" {
		if m == nil {
			return nil, errors.New("mutual TLS (ISTIO_MUTUAL) needs the workload certificate, and the sidecar runs without a CA (--ca-address)")
		}
		exact, others := splitSANs(u.SANs)
		cfg = m.ClientTLSConfig(exact...)
		if len(others) > 0 { // non-exact matchers: any of them may match instead
			cfg = m.ClientTLSConfig()
			all := u.SANs
			verify := cfg.VerifyConnection
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if err := verify(cs); err != nil {
					return err
				}
				if err := verifySAN(cs.PeerCertificates[0], all); err != nil {
					return errors.New("the peer's certificate matches none of the cluster's subjectAltNames")
				}
				return nil
			}
		}
		if u.CertificateSDS == "" {
			cfg.GetClientCertificate = nil
		}
	} else {
		var err error
		if cfg, err = fileClientTLSConfig(u); err != nil {
			return nil, err
		}
	}
	cfg.ServerName = u.SNI
	cfg.NextProtos = u.ALPN
	if v, ok := tlsVersions[u.MinVersion]; ok {
		cfg.MinVersion = v
	}
	if v, ok := tlsVersions[u.MaxVersion]; ok {
		cfg.MaxVersion = v
	}
	return cfg, nil
}

// fileClientTLSConfig is SIMPLE or MUTUAL with certificate files: the server verified
// against trusted_ca (and the SANs), or not at all without a validation context
// (insecureSkipVerify), as Envoy does.
func fileClientTLSConfig(u *resource.UpstreamTLS) (*tls.Config, error) {
	certs, err := loadCertificates(u.Certificates) // tls.go
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: certs}
	if !u.TrustedCA.IsSet() {
		cfg.InsecureSkipVerify = true // no validation context: Envoy does not verify the server either
		return cfg, nil
	}
	roots, err := loadTrustedCA(u.TrustedCA)
	if err != nil {
		return nil, err
	}
	// Envoy checks the chain and the SANs, not the host name: verified in VerifyConnection.
	cfg.InsecureSkipVerify = true // verified in VerifyConnection
	sans := u.SANs
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the server presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
			return err
		}
		if len(sans) > 0 && verifySAN(cs.PeerCertificates[0], sans) != nil {
			return errors.New("the server's certificate matches none of the cluster's subjectAltNames")
		}
		return nil
	}
	return cfg, nil
}

// splitSANs separates exact matchers (Istio's service accounts) from the others.
func splitSANs(ms []resource.SANMatcher) (exact []string, others []resource.SANMatcher) {
	for _, m := range ms {
		if m.Matcher.Kind == resource.MatchExact && !m.Matcher.IgnoreCase && (m.Type == resource.SANURI || m.Type == resource.SANAny) {
			exact = append(exact, m.Matcher.Value)
			continue
		}
		others = append(others, m)
	}
	return exact, others
}
