package jwtauthn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Bounds on a fetched key set: a key server cannot make the proxy buffer or parse more.
const (
	maxJWKSBytes = 1 << 20 // 1 MiB
	maxJWKSKeys  = 100
	// minRefetch is the shortest interval between two fetches of one remote key set
	// prompted by an unknown key id (key rotation), so tokens with made-up ids cannot make
	// the proxy hammer the key server.
	minRefetch = 10 * time.Second
)

// parseJWKS reads a JWKS document, keeping the public keys Lucid can verify with and
// skipping the others (as a key of an unknown type does not make Envoy reject the set).
func parseJWKS(doc []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("Jwks is an invalid JSON: %w", err) //nolint:staticcheck // ST1005: Envoy's wording
	}
	if set.Keys == nil {
		return nil, errors.New("Jwks does not have [keys] field") //nolint:staticcheck // ST1005: Envoy's wording
	}
	if len(set.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("jwks has %d keys, more than the %d Lucid accepts", len(set.Keys), maxJWKSKeys)
	}
	var out []jose.JSONWebKey
	var firstErr error
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("keys[%d]: %w", i, err)
			}
			continue
		}
		if !k.IsPublic() || !k.Valid() {
			if firstErr == nil {
				firstErr = fmt.Errorf("keys[%d]: not a valid public key", i)
			}
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		msg := "Jwks doesn't have any valid public key"
		if firstErr != nil {
			msg += " (" + firstErr.Error() + ")"
		}
		return nil, errors.New(msg)
	}
	return out, nil
}

// keySource gives a provider's keys: fixed (inline or file) or fetched from a URI.
type keySource interface {
	// keys returns the current keys; refresh asks a remote source to fetch again now
	// (an unknown key id). Status is JWKSFetchFailed when there are no keys to give.
	keys(ctx context.Context, refresh bool) ([]jose.JSONWebKey, Status, error)
}

// localKeys is a fixed key set from a document (err: it could not be read).
func localKeys(doc []byte, err error, what string) keySource {
	if err == nil {
		var keys []jose.JSONWebKey
		if keys, err = parseJWKS(doc); err == nil {
			return staticKeys(keys)
		}
	}
	return badKeys{fmt.Errorf("%s: %w", what, err)}
}

// badKeys is a key set that could not be loaded: every token fails with its reason.
type badKeys struct{ err error }

func (b badKeys) keys(context.Context, bool) ([]jose.JSONWebKey, Status, error) {
	return nil, JWKSNoValidKeys, b.err
}

type staticKeys []jose.JSONWebKey

func (s staticKeys) keys(context.Context, bool) ([]jose.JSONWebKey, Status, error) {
	return s, OK, nil
}

// remoteKeys is a key set fetched from a jwks_uri, cached for the cache duration and
// fetched again when it expires or a token names a key id it does not have. A failed
// fetch keeps serving the previous keys (the last good key set) and is retried on the
// next request after minRefetch. Fetches are single-flight: concurrent requests wait for
// the one in progress.
type remoteKeys struct {
	cfg    resource.RemoteJWKS
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	set       []jose.JSONWebKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last attempt
	lastErr   error
	inflight  chan struct{} // closed when the fetch in progress ends
	fetches   int           // attempts, for tests and stats
}

func (r *remoteKeys) keys(ctx context.Context, refresh bool) ([]jose.JSONWebKey, Status, error) {
	for {
		r.mu.Lock()
		if wait := r.inflight; wait != nil {
			r.mu.Unlock()
			select {
			case <-wait:
				refresh = false
				continue
			case <-ctx.Done():
				return nil, JWKSFetchFailed, ctx.Err()
			}
		}
		now := r.now()
		need := r.set == nil || refresh || now.Sub(r.fetchedAt) >= r.cfg.CacheDuration
		if need && !r.triedAt.IsZero() && now.Sub(r.triedAt) < min(minRefetch, r.cfg.CacheDuration) {
			need = false // fetched (or failed) a moment ago: do not hammer the key server
		}
		if !need {
			set, err := r.set, r.lastErr
			r.mu.Unlock()
			if set == nil {
				return nil, JWKSFetchFailed, err
			}
			return set, OK, nil
		}
		done := make(chan struct{})
		r.inflight, r.triedAt = done, now
		r.fetches++
		r.mu.Unlock()

		set, err := r.fetch()

		r.mu.Lock()
		if err == nil {
			r.set, r.fetchedAt, r.lastErr = set, r.now(), nil
		} else {
			r.lastErr = err
		}
		r.inflight = nil
		close(done)
		set, err = r.set, r.lastErr
		r.mu.Unlock()
		if set == nil {
			return nil, JWKSFetchFailed, err
		}
		return set, OK, nil
	}
}

func (r *remoteKeys) fetch() ([]jose.JSONWebKey, error) {
	timeout := r.cfg.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	// Not the request's context, not even its values: the fetch serves every request
	// waiting for the keys and may outlive this one, and net/http's Transport keeps
	// looking at the context's values on its dial goroutine after the call returned (the
	// proxy reuses a finished request's memory, its context included).
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URI, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri %q: %w", r.cfg.URI, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", r.cfg.URI, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("fetch %s: %w", r.cfg.URI, err)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetch %s: status %d", r.cfg.URI, resp.StatusCode)
	case len(body) > maxJWKSBytes:
		return nil, fmt.Errorf("fetch %s: the key set is larger than %d bytes", r.cfg.URI, maxJWKSBytes)
	}
	set, err := parseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", r.cfg.URI, err)
	}
	return set, nil
}

// verifySignature is jwt_verify_lib's verifyJwt: every key whose kid and alg fit is
// tried; KidAlgMismatch when none fits, VerificationFails when none verifies.
func verifySignature(t *token, keys []jose.JSONWebKey) Status {
	jws, err := jose.ParseSignedCompact(t.raw, supportedAlgs)
	if err != nil {
		return VerificationFails
	}
	tried := false
	for i := range keys {
		k := &keys[i]
		if t.kid != "" && k.KeyID != "" && k.KeyID != t.kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != t.alg {
			continue
		}
		if !keyFitsAlg(k, t.alg) {
			continue
		}
		tried = true
		if _, err := jws.Verify(k.Key); err == nil {
			return OK
		}
	}
	if !tried {
		return KidAlgMismatch
	}
	return VerificationFails
}

// keyFitsAlg: RS*/PS* need an RSA key, ES* an EC key, EdDSA an Ed25519 key.
func keyFitsAlg(k *jose.JSONWebKey, alg string) bool {
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
