package jwtauthn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// supportedAlgs are the signature algorithms Lucid verifies (Envoy's, without HS*: Istio
// publishes public keys only).
var supportedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// token is a parsed, not yet verified, JWT.
type token struct {
	raw       string
	alg, kid  string
	payload   map[string]any
	rawClaims []byte // the payload JSON
	iss, sub  string
	audiences []string
	exp, nbf  int64 // 0: absent
}

// parseToken checks the form of raw as jwt_verify_lib's Jwt::parseFromString does.
func parseToken(raw string) (*token, Status) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, BadFormat
	}
	t := &token{raw: raw}
	hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return nil, HeaderBadBase64
	}
	var h map[string]any
	if json.Unmarshal(hdr, &h) != nil {
		return nil, HeaderBadJSON
	}
	alg, ok := h["alg"].(string)
	if !ok {
		return nil, HeaderBadAlg
	}
	if !algSupported(alg) {
		return nil, HeaderUnsupportedAlg
	}
	t.alg = alg
	if kid, present := h["kid"]; present {
		if t.kid, ok = kid.(string); !ok {
			return nil, HeaderBadJSON
		}
	}
	t.rawClaims, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, PayloadBadBase64
	}
	dec := json.NewDecoder(bytes.NewReader(t.rawClaims))
	if dec.Decode(&t.payload) != nil || t.payload == nil {
		return nil, PayloadBadJSON
	}
	if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "=")); err != nil {
		return nil, SignatureBadBase64
	}
	if v, present := t.payload["iss"]; present {
		if t.iss, ok = v.(string); !ok {
			return nil, IssNotString
		}
	}
	if v, present := t.payload["sub"]; present {
		if t.sub, ok = v.(string); !ok {
			return nil, SubNotString
		}
	}
	if t.exp, ok = intClaim(t.payload, "exp"); !ok {
		return nil, ExpNotInteger
	}
	if t.nbf, ok = intClaim(t.payload, "nbf"); !ok {
		return nil, NbfNotInteger
	}
	switch aud := t.payload["aud"].(type) {
	case nil:
	case string:
		t.audiences = []string{aud}
	case []any:
		for _, a := range aud {
			s, isStr := a.(string)
			if !isStr {
				return nil, AudNotString
			}
			t.audiences = append(t.audiences, s)
		}
	default:
		return nil, AudNotString
	}
	return t, OK
}

func algSupported(alg string) bool {
	for _, a := range supportedAlgs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// intClaim reads a NumericDate claim; absent is 0, true.
func intClaim(p map[string]any, name string) (int64, bool) {
	v, present := p[name]
	if !present {
		return 0, true
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt64/2 {
		return 0, false
	}
	return int64(f), true
}

// checkTime is jwt_verify_lib's verifyTimeConstraint: nbf and exp with the clock skew.
func (t *token) checkTime(now time.Time, skew time.Duration) Status {
	sec := now.Unix()
	s := int64(skew / time.Second)
	if t.nbf != 0 && t.nbf > sec+s {
		return NotYetValid
	}
	if t.exp != 0 && t.exp < sec-s {
		return Expired
	}
	return OK
}

// audienceAllowed is jwt_verify_lib's CheckAudience: any of the token's audiences in the
// allowed list, compared without a scheme ("http://", "https://") and a trailing '/'.
// An empty list allows every token.
func audienceAllowed(allowed, got []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, g := range got {
		for _, a := range allowed {
			if sanitizeAudience(g) == sanitizeAudience(a) {
				return true
			}
		}
	}
	return false
}

func sanitizeAudience(a string) string {
	a = strings.TrimPrefix(strings.TrimPrefix(a, "http://"), "https://")
	return strings.TrimSuffix(a, "/")
}
