package ca

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// DefaultPort is istiod's secure gRPC port: the CA (and xDS over TLS) listen on it.
const DefaultPort = 15012

// metaImpersonatedIdentity is the request metadata key of Istio's node agents (ztunnel)
// asking for another identity's certificate (pkg/security).
const metaImpersonatedIdentity = "ImpersonatedIdentity"

// Service is istio.v1.auth.IstioCertificateService: CreateCertificate authenticates the
// caller, then has the CA sign the CSR for the caller's identity.
type Service struct {
	securityv1alpha1.UnimplementedIstioCertificateServiceServer
	ca    *CA
	auths []Authenticator
	log   *slog.Logger
}

// NewService serves ca's certificates to callers one of auths authenticates (tried in
// order; the first identity wins).
func NewService(ca *CA, log *slog.Logger, auths ...Authenticator) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{ca: ca, auths: auths, log: log.With("component", "ca")}
}

// Register adds the service to a gRPC server (the one on the TLS port).
func (s *Service) Register(r grpc.ServiceRegistrar) {
	securityv1alpha1.RegisterIstioCertificateServiceServer(r, s)
}

// CreateCertificate implements IstioCertificateServiceServer with Istio's answers: an
// unauthenticated caller gets Unauthenticated "request authenticate failure" (followed
// here by why), a refused CSR InvalidArgument "CSR signing error (…)".
func (s *Service) CreateCertificate(ctx context.Context, req *securityv1alpha1.IstioCertificateRequest) (*securityv1alpha1.IstioCertificateResponse, error) {
	if !OverTLS(ctx) {
		// The plaintext xDS port shares the services: a token sent there could be read.
		s.log.Warn("certificate request refused: not over TLS", "peer", peerAddr(ctx))
		return nil, status.Error(codes.Unauthenticated, "request authenticate failure: the CA answers only on the control plane's TLS port (15012), where the workload's credential cannot be read on the way")
	}
	id, err := Authenticate(ctx, s.auths...)
	if err != nil {
		s.log.Warn("certificate request refused: caller not authenticated", "peer", peerAddr(ctx), "reason", err)
		return nil, status.Error(codes.Unauthenticated, "request authenticate failure: "+err.Error())
	}
	if imp := req.GetMetadata().GetFields()[metaImpersonatedIdentity].GetStringValue(); imp != "" {
		// Istio lets only CA_TRUSTED_NODE_ACCOUNTS (ztunnel) impersonate; Lucid has none.
		s.log.Warn("certificate request refused: impersonation is not allowed", "peer", peerAddr(ctx), "caller", id, "impersonated", imp)
		return nil, status.Error(codes.Unauthenticated, "request impersonation authentication failure")
	}
	// Metadata CertSigner (Istio's SignWithCertChain) gets the same chain: one signer here.
	chain, err := s.ca.Sign([]byte(req.GetCsr()), id, secondsTTL(req.GetValidityDuration()))
	if err != nil {
		s.log.Warn("certificate request refused", "peer", peerAddr(ctx), "identity", id, "reason", err)
		var ce *Error
		if errors.As(err, &ce) {
			return nil, ce.GRPCStatus().Err()
		}
		return nil, status.Error(codes.Internal, "CSR signing error ("+err.Error()+")")
	}
	s.log.Debug("certificate issued", "identity", id, "peer", peerAddr(ctx))
	return &securityv1alpha1.IstioCertificateResponse{CertChain: chain}, nil
}

// secondsTTL is validity_duration (seconds) as a Duration; one too long for a Duration
// saturates (and is then refused as over the maximum) instead of wrapping around.
func secondsTTL(v int64) time.Duration {
	if v > int64(math.MaxInt64/time.Second) {
		return math.MaxInt64
	}
	return time.Duration(v) * time.Second
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// ServerNames are the DNS names of the control plane's TLS port in namespace ns: the
// names Istio's agents dial (istiod.<ns>.svc, and the legacy istio-pilot) and Lucid's
// Service (lucid-discovery.<ns>.svc).
func ServerNames(ns string) []string {
	var out []string
	for _, svc := range []string{"istiod", "istio-pilot", "lucid-discovery"} {
		out = append(out, svc+"."+ns+".svc")
	}
	return out
}

// ServingOptions configure the TLS port's serving certificate.
type ServingOptions struct {
	DNSNames []string // default ServerNames("istio-system")
	IPs      []net.IP // local mode: the address agents dial
	// Validity is each certificate's lifetime (default DefaultWorkloadTTL); RenewBefore how
	// long before expiry the next is issued (default half of Validity).
	Validity, RenewBefore time.Duration
	Logger                *slog.Logger
}

// ServingRotator issues the control plane's serving certificate from the CA and renews
// it (run its Run): agents verify it against the mesh roots they were given.
func (c *CA) ServingRotator(o ServingOptions) (*pki.Rotator, error) {
	if len(o.DNSNames) == 0 {
		o.DNSNames = ServerNames("istio-system")
	}
	if o.Validity <= 0 {
		o.Validity = DefaultWorkloadTTL
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = o.Validity / 2
	}
	return pki.NewRotator(pki.RotatorOptions{
		Issue: func(now time.Time) (*tls.Certificate, error) {
			return c.auth.Load().Issue(pki.Template{DNSNames: o.DNSNames, IPs: o.IPs, Usage: pki.ServerAuth, Validity: o.Validity, Now: now}, pki.ECDSAP256)
		},
		RenewBefore: o.RenewBefore,
		Name:        "control plane serving certificate",
		Logger:      o.Logger,
		Now:         c.o.Now,
	})
}

// ServerTLSConfig is the TLS configuration of the control plane's secure port: the
// rotator's certificate, TLS 1.2 or later, and client certificates verified against the
// mesh roots when a client presents one (ClientCerts and, later, xDS read the identity
// from them); a client without one is still served (it authenticates with a token).
func (c *CA) ServerTLSConfig(r *pki.Rotator) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      c.auth.Load().RootPool(),
	}
}
