package ca

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// Authenticator finds the identity of a CreateCertificate caller from the call's
// credentials. It returns an error wrapping ErrNoCredential when the call carries no
// credential of its kind, so that the next authenticator is tried.
type Authenticator interface {
	Authenticate(ctx context.Context) (spiffe.ID, error)
}

// ErrNoCredential is an Authenticator's answer when the call carries no credential of
// its kind.
var ErrNoCredential = errors.New("no credential")

// DefaultAudience is the audience of the tokens the CA accepts (Istio's
// security.TokenAudiences: the pod's projected istio-token).
const DefaultAudience = "istio-ca"

// BearerToken is the token of the call's `authorization: Bearer <token>` metadata, as
// Istio's agents send it.
func BearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", fmt.Errorf("%w: no authorization metadata (send the workload's token as `authorization: Bearer <token>`)", ErrNoCredential)
	}
	for _, v := range vals {
		if tok, ok := strings.CutPrefix(v, "Bearer "); ok && tok != "" {
			return tok, nil
		}
	}
	return "", errors.New("the authorization metadata is not `Bearer <token>`")
}

// TokenReviewer asks Kubernetes who a service-account token belongs to (a TokenReview).
// kubeca.TokenReviewer implements it.
type TokenReviewer interface {
	// ReviewToken returns the token's service account when the API server authenticates
	// it for one of audiences; otherwise an error saying why not.
	ReviewToken(ctx context.Context, token string, audiences []string) (namespace, serviceAccount string, err error)
}

// KubeTokens authenticates a caller by its Kubernetes service-account token (Istio's
// KubeJWTAuthenticator): spiffe://<trust domain>/ns/<namespace>/sa/<service account>.
type KubeTokens struct {
	Reviewer    TokenReviewer
	TrustDomain string   // default DefaultTrustDomain
	Audiences   []string // default [DefaultAudience]
}

// Authenticate implements Authenticator.
func (k KubeTokens) Authenticate(ctx context.Context) (spiffe.ID, error) {
	tok, err := BearerToken(ctx)
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("kubernetes token: %w", err)
	}
	aud := k.Audiences
	if len(aud) == 0 {
		aud = []string{DefaultAudience}
	}
	ns, sa, err := k.Reviewer.ReviewToken(ctx, tok, aud)
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("kubernetes token: %w", err)
	}
	id := spiffe.ID{TrustDomain: orDefault(k.TrustDomain, DefaultTrustDomain), Namespace: ns, ServiceAccount: sa}
	if err := id.Validate(); err != nil {
		return spiffe.ID{}, fmt.Errorf("kubernetes token: %w", err)
	}
	return id, nil
}

// ClientCerts authenticates a caller by the mesh certificate it presented on the TLS
// connection (Istio's ClientCertAuthenticator): a workload renewing with its current
// certificate. The TLS server must verify client certificates against the CA's roots
// (ServerTLSConfig does); only verified chains count.
type ClientCerts struct {
	TrustDomain string // default DefaultTrustDomain
}

// Authenticate implements Authenticator.
func (c ClientCerts) Authenticate(ctx context.Context) (spiffe.ID, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return spiffe.ID{}, fmt.Errorf("client certificate: %w", ErrNoCredential)
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return spiffe.ID{}, fmt.Errorf("client certificate: %w", ErrNoCredential)
	}
	id, err := spiffe.FromCertificate(ti.State.VerifiedChains[0][0])
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("client certificate: %w", err)
	}
	if td := orDefault(c.TrustDomain, DefaultTrustDomain); id.TrustDomain != td {
		return spiffe.ID{}, fmt.Errorf("client certificate: identity %s is not in trust domain %s", id, td)
	}
	return id, nil
}

// Authenticate tries each authenticator in order; the first identity wins. The error
// lists why each failed. xDS on the TLS port asks it who a proxy is.
func Authenticate(ctx context.Context, auths ...Authenticator) (spiffe.ID, error) {
	var reasons []string
	for _, a := range auths {
		id, err := a.Authenticate(ctx)
		if err == nil {
			return id, nil
		}
		reasons = append(reasons, err.Error())
	}
	if len(reasons) == 0 {
		return spiffe.ID{}, errors.New("no authenticator configured")
	}
	return spiffe.ID{}, errors.New(strings.Join(reasons, "; "))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// OverTLS reports whether the call came over TLS (the secure port), where a bearer token
// cannot be read on the way.
func OverTLS(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	_, ok = p.AuthInfo.(credentials.TLSInfo)
	return ok
}
