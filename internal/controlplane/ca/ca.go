// Package ca is the mesh's certificate authority, run by `lucid discovery` as istiod runs
// Citadel:
//
//	Store (local state dir, or Kubernetes Secrets cacerts / istio-ca-secret: see kubeca)
//	  └─► Load ─► CA (signs workload CSRs: SPIFFE URI SAN from the caller, never the CSR)
//	                └─► Service: istio.v1.auth.IstioCertificateService/CreateCertificate
//	                      on the TLS port (15012) with a serving certificate the CA issues
//	                      for the control plane's names (ServingRotator, ServerTLSConfig)
//	Authenticators: who is calling — Kubernetes service-account tokens (TokenReview,
//	audience istio-ca), local-mode workload tokens (LocalTokens), mesh client certificates.
//
// The package holds no Kubernetes client: the caller plugs in a Store and a
// TokenReviewer (kubeca implements both with the dynamic client).
package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// Istio's defaults (DEFAULT_WORKLOAD_CERT_TTL, MAX_WORKLOAD_CERT_TTL,
// CITADEL_SELF_SIGNED_CA_CERT_TTL) and its trust domain default.
const (
	DefaultWorkloadTTL = 24 * time.Hour
	DefaultMaxTTL      = 90 * 24 * time.Hour
	DefaultRootTTL     = 3650 * 24 * time.Hour
	DefaultTrustDomain = "cluster.local"
)

// Options configure a CA.
type Options struct {
	TrustDomain string        // mesh config trustDomain; default DefaultTrustDomain
	DefaultTTL  time.Duration // applied when a request asks for none; default DefaultWorkloadTTL
	MaxTTL      time.Duration // a longer request is refused; default DefaultMaxTTL
	Now         func() time.Time
}

// CA signs workload certificates. It is safe for concurrent use.
type CA struct {
	auth atomic.Pointer[pki.Authority]
	o    Options
}

// New is a CA signing with a (see Load).
func New(a *pki.Authority, o Options) (*CA, error) {
	if a == nil {
		return nil, errors.New("ca: no authority")
	}
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if o.DefaultTTL <= 0 {
		o.DefaultTTL = DefaultWorkloadTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.DefaultTTL > o.MaxTTL {
		return nil, fmt.Errorf("ca: the default certificate TTL (%s) is over the maximum (%s)", o.DefaultTTL, o.MaxTTL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := (spiffe.ID{TrustDomain: o.TrustDomain, Namespace: "x", ServiceAccount: "x"}).Validate(); err != nil {
		return nil, fmt.Errorf("ca: mesh config trustDomain: %w", err)
	}
	c := &CA{o: o}
	c.auth.Store(a)
	return c, nil
}

// TrustDomain is the trust domain of the identities the CA issues.
func (c *CA) TrustDomain() string { return c.o.TrustDomain }

// Authority is the signing authority.
func (c *CA) Authority() *pki.Authority { return c.auth.Load() }

// RootsPEM is the trust bundle workloads need (Istio's root-cert.pem, the content of the
// istio-ca-root-cert ConfigMap).
func (c *CA) RootsPEM() []byte { return pki.EncodeCerts(c.auth.Load().Roots...) }

// Error is a refused or failed signing, with the gRPC code Istio answers.
type Error struct {
	Code codes.Code
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// GRPCStatus is Istio's status for a signing error: "CSR signing error (<reason>)".
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, "CSR signing error ("+e.Err.Error()+")")
}

func csrError(format string, args ...any) *Error {
	return &Error{Code: codes.InvalidArgument, Err: fmt.Errorf(format, args...)}
}

// Sign issues a workload certificate for the CSR's key with id as its only SAN (the
// caller's authenticated identity: the CSR's own SANs are checked, never copied) and
// returns Istio's response chain: the leaf, the CA's cert-chain.pem, the roots, one PEM
// certificate per element. ttl <= 0 asks for the default. Errors are *Error: a bad CSR, a
// key the mesh cannot use, a SAN other than id or a TTL over the maximum are
// InvalidArgument; a CA that cannot sign is Internal.
func (c *CA) Sign(csrPEM []byte, id spiffe.ID, ttl time.Duration) ([]string, error) {
	csr, err := pki.ParseCSR(csrPEM)
	if err != nil {
		return nil, csrError("%w", err)
	}
	if err := pki.CheckPublicKey(csr.PublicKey); err != nil {
		return nil, csrError("%w", err)
	}
	if err := checkSANs(csr.URIs, csr.DNSNames, len(csr.IPAddresses), csr.EmailAddresses, id); err != nil {
		return nil, err
	}
	if ttl > c.o.MaxTTL {
		return nil, csrError("requested TTL %s is greater than the max allowed TTL %s", ttl, c.o.MaxTTL)
	}
	if ttl <= 0 {
		ttl = c.o.DefaultTTL
	}
	if err := id.Validate(); err != nil {
		return nil, &Error{Code: codes.Internal, Err: err}
	}
	a := c.auth.Load()
	leaf, err := a.Sign(csr.PublicKey, pki.Template{URIs: []*url.URL{id.URL()}, Usage: pki.ServerAuth | pki.ClientAuth, Validity: ttl, Now: c.o.Now()})
	if err != nil {
		return nil, &Error{Code: codes.Internal, Err: err}
	}
	chain := []string{string(pki.EncodeCerts(leaf))}
	for _, cert := range append(append([]*x509.Certificate{}, a.Chain...), a.Roots...) {
		chain = append(chain, string(pki.EncodeCerts(cert)))
	}
	return chain, nil
}

// checkSANs refuses a CSR asking for an identity other than the caller's: it may carry no
// SAN, or the caller's SPIFFE URI only.
func checkSANs(uris []*url.URL, dns []string, ips int, emails []string, id spiffe.ID) error {
	const only = "workload certificates carry only the caller's SPIFFE identity"
	want := id.String()
	for _, u := range uris {
		if got := u.String(); got != want {
			return csrError("the CSR asks for URI SAN %q, but the caller authenticated as %s: a certificate's identity comes from the caller's credential, never from the CSR", got, want)
		}
	}
	if len(dns) > 0 {
		return csrError("the CSR asks for DNS SAN %s: %s", strings.Join(dns, ", "), only)
	}
	if ips > 0 {
		return csrError("the CSR asks for %d IP SAN(s): %s", ips, only)
	}
	if len(emails) > 0 {
		return csrError("the CSR asks for email SAN %s: %s", strings.Join(emails, ", "), only)
	}
	return nil
}
