package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
)

// TokenSource returns the credential the CA authenticates the workload by.
type TokenSource func(ctx context.Context) (string, error)

// FileToken reads the token from path at every request: Kubernetes rotates the projected
// service-account token in place (Istio's /var/run/secrets/tokens/istio-token).
func FileToken(path string) TokenSource {
	return func(context.Context) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("workload token: %w", err)
		}
		tok := string(bytes.TrimSpace(b))
		if tok == "" {
			return "", fmt.Errorf("workload token: %s is empty", path)
		}
		return tok, nil
	}
}

// StaticToken always returns tok (local mode: the token `lucid up` handed the sidecar).
func StaticToken(tok string) TokenSource {
	return func(context.Context) (string, error) {
		if tok == "" {
			return "", errors.New("workload token: empty")
		}
		return tok, nil
	}
}

// bearer sends the token as `authorization: Bearer <token>`, as Istio's agent does, and
// only over TLS.
type bearer struct{ src TokenSource }

func (b bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := b.src(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// DialOptions configure Dial.
type DialOptions struct {
	// Address is the CA's host:port (Istio's CA_ADDR, istiod.istio-system.svc:15012).
	Address string
	// Roots verify the CA's serving certificate: the mesh roots (Istio's
	// /var/run/secrets/istio/root-cert.pem from ConfigMap istio-ca-root-cert; in local
	// mode the state directory's root-cert.pem).
	Roots *x509.CertPool
	// ServerName is the name checked in the CA's certificate; default Address's host
	// (an IP is checked against the certificate's IP SANs).
	ServerName string
	Token      TokenSource // required
}

// Dial is a gRPC connection to the CA over TLS with the workload's token on every call.
// The connection is made lazily; close it when done.
func Dial(o DialOptions) (*grpc.ClientConn, securityv1alpha1.IstioCertificateServiceClient, error) {
	if o.Roots == nil {
		return nil, nil, errors.New("identity: no roots to verify the CA's certificate")
	}
	if o.Token == nil {
		return nil, nil, errors.New("identity: no workload token")
	}
	name := o.ServerName
	if name == "" {
		host, _, err := net.SplitHostPort(o.Address)
		if err != nil {
			return nil, nil, fmt.Errorf("identity: CA address %q: %w", o.Address, err)
		}
		name = host
	}
	creds := credentials.NewTLS(&tls.Config{RootCAs: o.Roots, ServerName: name, MinVersion: tls.VersionTLS12})
	cc, err := grpc.NewClient(o.Address, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer{o.Token}))
	if err != nil {
		return nil, nil, fmt.Errorf("identity: CA at %s: %w", o.Address, err)
	}
	return cc, securityv1alpha1.NewIstioCertificateServiceClient(cc), nil
}
