package config

// RequestAuthentication (security.istio.io), validated as Istio's
// ValidateRequestAuthentication does.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	securityv1beta1 "istio.io/api/security/v1beta1"
)

// KindRequestAuthentication is security.istio.io RequestAuthentication: which JWTs a
// workload accepts (Spec: *securityv1beta1.RequestAuthentication).
const KindRequestAuthentication = "RequestAuthentication"

var strictHeaderName = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

func validateRequestAuthentication(o *Object, v *validator) {
	ra := o.Spec.(*securityv1beta1.RequestAuthentication)
	if ra.Selector != nil {
		v.selectorLabels("spec.selector.matchLabels", ra.Selector.MatchLabels)
		if ra.TargetRef != nil || len(ra.TargetRefs) > 0 {
			v.errorf("spec", "only one of targetRefs or workloadSelector can be set")
		}
	}
	v.policyTargets(ra.TargetRef, ra.TargetRefs)
	for i, r := range ra.JwtRules {
		p := idx("spec.jwtRules", i)
		if r == nil {
			continue
		}
		v.jwtRule(p, r)
	}
}

func (v *validator) jwtRule(p string, r *securityv1beta1.JWTRule) {
	for i, a := range r.Audiences {
		if a == "" {
			v.errorf(idx(p+".audiences", i), "audience must be non-empty string")
		}
	}
	if r.Issuer == "" && r.JwksUri == "" {
		v.errorf(p, "issuer or jwksUri must be non-empty string")
	}
	if r.JwksUri != "" {
		if u, err := url.Parse(r.JwksUri); err != nil {
			v.errorf(p+".jwksUri", "%v", err)
		} else {
			switch u.Scheme {
			case "http", "https":
				if u.Port() != "" {
					if _, err := strconv.Atoi(u.Port()); err != nil {
						v.errorf(p+".jwksUri", "invalid port %q", u.Port())
					}
				}
			case "file":
				v.warnf(p+".jwksUri", "file:// key sets are a Lucid extension for local mode; Istio accepts only http and https")
			default:
				v.errorf(p+".jwksUri", "URI scheme %q is not supported", u.Scheme)
			}
		}
		if r.Jwks != "" {
			v.warnf(p+".jwks", "both jwks and jwksUri are set: jwks (inline) wins")
		}
	}
	if r.Jwks != "" {
		if msg := jwksError(r.Jwks); msg != "" {
			v.errorf(p+".jwks", "jwks parse error: %s", msg)
		} else if hasPrivateKey(r.Jwks) {
			v.warnf(p+".jwks", "jwks contains private key material; only public keys are used for verification")
		}
	}
	for i, h := range r.FromHeaders {
		if h == nil || h.Name == "" {
			v.errorf(idx(p+".fromHeaders", i)+".name", "location header name must be non-empty string")
		}
	}
	for i, q := range r.FromParams {
		if q == "" {
			v.errorf(idx(p+".fromParams", i), "location query must be non-empty string")
		}
	}
	for i, c := range r.FromCookies {
		if c == "" {
			v.errorf(idx(p+".fromCookies", i), "cookie name must be non-empty string")
		}
	}
	for i, c := range r.OutputClaimToHeaders {
		cp := idx(p+".outputClaimToHeaders", i)
		switch {
		case c == nil:
			v.errorf(cp, "outputClaimToHeaders must not be null")
		case c.Claim == "" || c.Header == "":
			v.errorf(cp, "outputClaimToHeaders header and claim value must be non-empty string")
		case !strictHeaderName.MatchString(c.Header):
			v.errorf(cp+".header", "invalid header name %q", c.Header)
		}
	}
	if r.OutputPayloadToHeader != "" && !strictHeaderName.MatchString(r.OutputPayloadToHeader) {
		v.errorf(p+".outputPayloadToHeader", "invalid header name %q", r.OutputPayloadToHeader)
	}
	if r.Timeout != nil {
		d := r.Timeout.AsDuration()
		switch {
		case d < time.Millisecond:
			v.errorf(p+".timeout", "duration must be greater than 1ms")
		case d%time.Millisecond != 0:
			v.errorf(p+".timeout", "only durations to ms precision are supported")
		}
	}
}

// jwksError parses a JWKS document with the JOSE library the proxy verifies with; "" when
// it has at least one usable key.
func jwksError(doc string) string {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return "not a JSON key set: " + err.Error()
	}
	if set.Keys == nil {
		return "no [keys] field"
	}
	var firstErr error
	for i, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("keys[%d]: %w", i, err)
			}
			continue
		}
		return ""
	}
	if firstErr != nil {
		return "no usable key (" + firstErr.Error() + ")"
	}
	return "no keys"
}

func hasPrivateKey(doc string) bool {
	var set jose.JSONWebKeySet
	if json.Unmarshal([]byte(doc), &set) != nil {
		return false
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return true
		}
	}
	return false
}
