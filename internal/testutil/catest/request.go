package catest

import (
	"context"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// Request asks the CA on cc for a one-hour certificate as an agent does: a new key's CSR
// (asking for the URI SANs sans, none usually) with token as `authorization: Bearer`.
func Request(ctx context.Context, cc grpc.ClientConnInterface, token string, sans ...string) (*securityv1alpha1.IstioCertificateResponse, error) {
	key, err := pki.NewKey(pki.ECDSAP256)
	if err != nil {
		return nil, err
	}
	var uris []*url.URL
	for _, s := range sans {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		uris = append(uris, u)
	}
	csr, err := pki.NewCSR(key, uris, nil)
	if err != nil {
		return nil, err
	}
	return securityv1alpha1.NewIstioCertificateServiceClient(cc).CreateCertificate(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token),
		&securityv1alpha1.IstioCertificateRequest{Csr: string(csr), ValidityDuration: 3600})
}

// IssuedID is the SPIFFE identity of the certificate in resp ("" when it has none).
func IssuedID(resp *securityv1alpha1.IstioCertificateResponse) string {
	if len(resp.GetCertChain()) == 0 {
		return ""
	}
	certs, err := pki.ParseCerts([]byte(resp.GetCertChain()[0]))
	if err != nil || len(certs) == 0 {
		return ""
	}
	id, err := spiffe.FromCertificate(certs[0])
	if err != nil {
		return ""
	}
	return id.String()
}
