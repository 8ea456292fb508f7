package agent

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/lucid-mesh/lucid/internal/agent/identity"
)

// xdsOverTLS reports whether the sidecar reaches xDS on the control plane's TLS port:
// when its discovery address is its CA's (Istio's istiod:15012 serves both). The
// plaintext port (15010) stays plaintext.
func xdsOverTLS(o Options, m *identity.Manager) bool {
	return m != nil && o.Identity.CAAddress != "" && o.Identity.CAAddress == o.Discovery
}

// xdsDialOptions are the xDS connection's credentials on the TLS port: the control
// plane's certificate verified with the mesh roots (--ca-root-cert) for the address's
// host, and the workload certificate as the client certificate, by which the control
// plane knows which configuration the proxy may have. The handshake waits for the
// first certificate. Nil (plaintext) otherwise.
func xdsDialOptions(o Options, m *identity.Manager) []grpc.DialOption {
	if !xdsOverTLS(o, m) {
		return nil
	}
	pem, _ := os.ReadFile(o.Identity.CARootCert) // read and checked by startIdentity
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	host, _, err := net.SplitHostPort(o.Discovery)
	if err != nil {
		host = o.Discovery
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		ServerName: host,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			select {
			case <-m.Ready():
			case <-cri.Context().Done():
				return nil, cri.Context().Err()
			}
			return m.GetClientCertificate(cri)
		},
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
}

// identityMetadata adds the workload's service account to the node metadata (Istio's
// SERVICE_ACCOUNT): the control plane checks it against the proxy's certificate.
func identityMetadata(o Options, meta map[string]string) {
	if o.Identity.CAAddress != "" && o.Identity.ServiceAccount != "" {
		meta["SERVICE_ACCOUNT"] = o.Identity.ServiceAccount
	}
}
