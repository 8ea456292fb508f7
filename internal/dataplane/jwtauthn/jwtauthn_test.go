package jwtauthn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	keyOnce sync.Once
	keyA    *rsa.PrivateKey
	keyB    *rsa.PrivateKey
)

func keys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		keyA, _ = rsa.GenerateKey(rand.Reader, 2048)
		keyB, _ = rsa.GenerateKey(rand.Reader, 2048)
	})
	return keyA, keyB
}

func jwks(t testing.TB, ks map[string]*rsa.PrivateKey) string {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range ks {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sign(t testing.TB, k *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	payload, _ := json.Marshal(claims)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

// istioConfig is what the control plane generates for one RequestAuthentication rule.
func istioConfig(p *resource.JWTProvider) *resource.JWTAuthn {
	p.Name = "origins-0"
	p.PayloadInMetadata = "payload"
	p.SpaceDelimitedClaims = []string{"permission", "scope"}
	if p.ClockSkew == 0 {
		p.ClockSkew = time.Minute
	}
	return &resource.JWTAuthn{
		Providers:           map[string]*resource.JWTProvider{"origins-0": p},
		BypassCORSPreflight: true,
		Rules: []resource.JWTRule{{Prefix: "/", Requires: resource.JWTRequirement{Kind: resource.JWTRequiresAny, Requirements: []resource.JWTRequirement{
			{Kind: resource.JWTProviderName, Provider: "origins-0"}, {Kind: resource.JWTAllowMissing},
		}}}},
	}
}

func request(h http.Header, target string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://httpbin"+target, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	return r
}

func TestVerifyIstioSemantics(t *testing.T) {
	a, b := keys(t)
	v, err := New(istioConfig(&resource.JWTProvider{Issuer: "iss", Audiences: []string{"https://api.example.com/"}, LocalJWKS: jwks(t, map[string]*rsa.PrivateKey{"a": a})}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, a, "a", map[string]any{"iss": "iss", "sub": "alice", "aud": "api.example.com", "scope": "read write"})
	for _, tc := range []struct {
		name   string
		auth   string
		status Status
	}{
		{"no token", "", OK},
		{"valid (audience compared without scheme and slash)", "Bearer " + good, OK},
		{"lower-case bearer", "bearer " + good, OK},
		{"other key", "Bearer " + sign(t, b, "a", map[string]any{"iss": "iss", "aud": "api.example.com"}), VerificationFails},
		{"unknown kid", "Bearer " + sign(t, a, "zzz", map[string]any{"iss": "iss", "aud": "api.example.com"}), KidAlgMismatch},
		{"expired beyond the skew", "Bearer " + sign(t, a, "a", map[string]any{"iss": "iss", "aud": "api.example.com", "exp": time.Now().Add(-2 * time.Minute).Unix()}), Expired},
		{"expired within the skew", "Bearer " + sign(t, a, "a", map[string]any{"iss": "iss", "aud": "api.example.com", "exp": time.Now().Add(-30 * time.Second).Unix()}), OK},
		{"not yet valid", "Bearer " + sign(t, a, "a", map[string]any{"iss": "iss", "aud": "api.example.com", "nbf": time.Now().Add(time.Hour).Unix()}), NotYetValid},
		{"audience", "Bearer " + sign(t, a, "a", map[string]any{"iss": "iss", "aud": []string{"x", "y"}}), AudienceNotAllowed},
		{"issuer", "Bearer " + sign(t, a, "a", map[string]any{"iss": "other"}), UnknownIssuer},
		{"two dots", "Bearer abc", BadFormat},
		{"bad header", "Bearer !!.e30.sig", HeaderBadBase64},
		{"alg none", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + ".e30.", HeaderUnsupportedAlg},
		{"exp not a number", "Bearer " + base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":"x"}`)) + ".c2ln", ExpNotInteger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			res := v.Verify(context.Background(), request(h, "/"), "/")
			if res.Status != tc.status {
				t.Fatalf("status %v (%s), want %v", res.Status, res.Status, tc.status)
			}
		})
	}
	res := v.Verify(context.Background(), request(http.Header{"Authorization": {"Bearer " + good}}, "/"), "/")
	if res.Principal() != "iss/alice" || res.Payload["scope"] == nil {
		t.Fatalf("principal %q payload %v", res.Principal(), res.Payload)
	}
	if scope, ok := res.Payload["scope"].([]any); !ok || len(scope) != 2 || scope[1] != "write" {
		t.Errorf("scope %v, want the space-delimited claim as a list", res.Payload["scope"])
	}
	up := http.Header{"Authorization": {"Bearer " + good}}
	res.Apply(up)
	if up.Get("Authorization") != "" {
		t.Error("the token was not removed (forwardOriginalToken is false)")
	}
}

func TestStatusReplyForms(t *testing.T) {
	if got := VerificationFails.Details(); got != "jwt_authn_access_denied{Jwt_verification_fails}" {
		t.Errorf("details %q", got)
	}
	if AudienceNotAllowed.HTTPStatus() != 403 || Expired.HTTPStatus() != 401 {
		t.Error("statuses")
	}
	if got := Realm(Expired, "http", "h", "/p?q"); got != `Bearer realm="http://h/p?q", error="invalid_token"` {
		t.Errorf("realm %q", got)
	}
	if got := Realm(Missing, "https", "h", "/"); got != `Bearer realm="https://h/"` {
		t.Errorf("realm %q", got)
	}
}

func TestLocationsAndOutputs(t *testing.T) {
	a, _ := keys(t)
	v, err := New(istioConfig(&resource.JWTProvider{
		Issuer: "iss", LocalJWKS: jwks(t, map[string]*rsa.PrivateKey{"a": a}), Forward: true,
		FromHeaders:          []resource.JWTHeader{{Name: "x-token", Prefix: "Token "}},
		FromParams:           []string{"tok"},
		FromCookies:          []string{"sess"},
		ForwardPayloadHeader: "x-payload",
		ClaimToHeaders:       []resource.JWTClaimHeader{{Header: "x-sub", Claim: "sub"}, {Header: "x-level", Claim: "org.level"}, {Header: "x-groups", Claim: "groups"}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, a, "a", map[string]any{"iss": "iss", "sub": "bob", "org": map[string]any{"level": 3}, "groups": []string{"g1", "g2"}})
	for _, tc := range []struct {
		name   string
		header http.Header
		target string
	}{
		{"custom header with prefix", http.Header{"X-Token": {"Token " + tok}}, "/"},
		{"query parameter", http.Header{}, "/?tok=" + tok},
		{"cookie", http.Header{"Cookie": {"sess=" + tok}}, "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(tc.header, tc.target)
			res := v.Verify(context.Background(), r, tc.target)
			if res.Status != OK || !res.Verified {
				t.Fatalf("status %v verified %v", res.Status, res.Verified)
			}
			up := r.Header.Clone()
			res.Apply(up)
			payload, _ := base64.RawURLEncoding.DecodeString(up.Get("X-Payload"))
			if !strings.Contains(string(payload), `"sub":"bob"`) {
				t.Errorf("x-payload %q", payload)
			}
			if up.Get("X-Sub") != "bob" || up.Get("X-Level") != "3" || up.Get("X-Groups") != "g1,g2" {
				t.Errorf("claim headers sub %q level %q groups %q", up.Get("X-Sub"), up.Get("X-Level"), up.Get("X-Groups"))
			}
			if tc.header.Get("X-Token") != "" && up.Get("X-Token") == "" {
				t.Error("forward: true, but the token header was removed")
			}
		})
	}
	// The default Authorization location is not one of this provider's.
	res := v.Verify(context.Background(), request(http.Header{"Authorization": {"Bearer " + tok}}, "/"), "/")
	if res.Status != OK || res.Verified {
		t.Errorf("Authorization header: status %v verified %v, want the token ignored", res.Status, res.Verified)
	}
}

// Istio's structure for two rules: either provider, and each token valid when present.
func TestTwoProviders(t *testing.T) {
	a, b := keys(t)
	cfg := &resource.JWTAuthn{Providers: map[string]*resource.JWTProvider{
		"origins-0": {Name: "origins-0", Issuer: "a", LocalJWKS: jwks(t, map[string]*rsa.PrivateKey{"a": a}), PayloadInMetadata: "payload"},
		"origins-1": {Name: "origins-1", Issuer: "b", LocalJWKS: jwks(t, map[string]*rsa.PrivateKey{"b": b}), PayloadInMetadata: "payload"},
	}}
	p0 := resource.JWTRequirement{Kind: resource.JWTProviderName, Provider: "origins-0"}
	p1 := resource.JWTRequirement{Kind: resource.JWTProviderName, Provider: "origins-1"}
	missing := resource.JWTRequirement{Kind: resource.JWTAllowMissing}
	cfg.Rules = []resource.JWTRule{{Prefix: "/", Requires: resource.JWTRequirement{Kind: resource.JWTRequiresAny, Requirements: []resource.JWTRequirement{
		p0, p1, {Kind: resource.JWTRequiresAll, Requirements: []resource.JWTRequirement{
			{Kind: resource.JWTRequiresAny, Requirements: []resource.JWTRequirement{p0, missing}},
			{Kind: resource.JWTRequiresAny, Requirements: []resource.JWTRequirement{p1, missing}},
		}},
	}}}}
	v, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tok    string
		status Status
		issuer string
	}{
		{"issuer b", sign(t, b, "b", map[string]any{"iss": "b", "sub": "x"}), OK, "b"},
		{"issuer a", sign(t, a, "a", map[string]any{"iss": "a", "sub": "x"}), OK, "a"},
		{"b's issuer with a's key", sign(t, a, "b", map[string]any{"iss": "b"}), VerificationFails, ""},
		{"none", "", OK, ""},
	} {
		h := http.Header{}
		if tc.tok != "" {
			h.Set("Authorization", "Bearer "+tc.tok)
		}
		res := v.Verify(context.Background(), request(h, "/"), "/")
		if res.Status != tc.status || res.Issuer != tc.issuer {
			t.Errorf("%s: status %v issuer %q, want %v %q", tc.name, res.Status, res.Issuer, tc.status, tc.issuer)
		}
	}
}

func TestCORSPreflightBypass(t *testing.T) {
	a, _ := keys(t)
	v, _ := New(istioConfig(&resource.JWTProvider{Issuer: "iss", LocalJWKS: jwks(t, map[string]*rsa.PrivateKey{"a": a})}), Options{})
	r := request(http.Header{"Authorization": {"Bearer bad"}, "Origin": {"http://x"}, "Access-Control-Request-Method": {"GET"}}, "/")
	r.Method = http.MethodOptions
	if res := v.Verify(context.Background(), r, "/"); res.Status != OK {
		t.Errorf("preflight: %v", res.Status)
	}
}

func TestBadLocalKeySet(t *testing.T) {
	a, _ := keys(t)
	v, err := New(istioConfig(&resource.JWTProvider{Issuer: "iss", LocalJWKS: `{"keys":[]}`}), Options{})
	if err != nil {
		t.Fatalf("New refused the configuration: %v", err)
	}
	res := v.Verify(context.Background(), request(http.Header{"Authorization": {"Bearer " + sign(t, a, "a", map[string]any{"iss": "iss"})}}, "/"), "/")
	if res.Status != JWKSNoValidKeys || res.Err == nil {
		t.Errorf("status %v err %v", res.Status, res.Err)
	}
}

// keyServer serves a key set on loopback and counts the fetches.
type keyServer struct {
	url     string
	fetches atomic.Int32
	mu      sync.Mutex
	doc     string
	status  int
	delay   time.Duration
}

func startKeyServer(t *testing.T, addr, doc string) *keyServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	ks := &keyServer{url: "http://" + ln.Addr().String() + "/jwks", doc: doc, status: 200}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		doc, status, delay := ks.doc, ks.status, ks.delay
		ks.mu.Unlock()
		time.Sleep(delay)
		w.WriteHeader(status)
		fmt.Fprint(w, doc)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ks
}

func (ks *keyServer) set(doc string, status int) {
	ks.mu.Lock()
	ks.doc, ks.status = doc, status
	ks.mu.Unlock()
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRemoteKeySet(t *testing.T) {
	a, b := keys(t)
	ks := startKeyServer(t, "127.0.181.30:0", jwks(t, map[string]*rsa.PrivateKey{"a": a}))
	clk := &clock{now: time.Now()}
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	v, err := New(istioConfig(&resource.JWTProvider{Issuer: "iss", RemoteJWKS: &resource.RemoteJWKS{
		URI: ks.url, Cluster: "outbound|80||keys", Timeout: time.Second, CacheDuration: 5 * time.Minute,
	}}), Options{HTTPClient: &http.Client{Transport: tr}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(tok string) Result {
		return v.Verify(context.Background(), request(http.Header{"Authorization": {"Bearer " + tok}}, "/"), "/")
	}
	claims := func() map[string]any { return map[string]any{"iss": "iss", "exp": clk.Now().Add(time.Hour).Unix()} }
	tokA := sign(t, a, "a", claims())

	// Fetched once, however many requests come at the same time.
	ks.mu.Lock()
	ks.delay = 100 * time.Millisecond
	ks.mu.Unlock()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if res := verify(tokA); res.Status != OK {
				t.Errorf("status %v", res.Status)
			}
		})
	}
	wg.Wait()
	ks.mu.Lock()
	ks.delay = 0
	ks.mu.Unlock()
	if n := ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for concurrent first requests, want 1", n)
	}
	// Cached.
	verify(tokA)
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want the cached set", n)
	}
	// Rotated: a token with a new key id makes the proxy fetch again (once: rate limited).
	ks.set(jwks(t, map[string]*rsa.PrivateKey{"a": a, "b": b}), 200)
	clk.add(minRefetch + time.Second)
	tokB := sign(t, b, "b", claims())
	if res := verify(tokB); res.Status != OK {
		t.Fatalf("rotated key: status %v", res.Status)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches after rotation, want 2", n)
	}
	bogus := sign(t, b, "nope", claims())
	verify(bogus)
	verify(bogus)
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("%d fetches after unknown key ids within %s, want no more", n, minRefetch)
	}
	// Expired cache, key server down: the last good set keeps verifying.
	ks.set("", 503)
	clk.add(6 * time.Minute)
	if res := verify(sign(t, a, "a", claims())); res.Status != OK {
		t.Errorf("stale keys: status %v", res.Status)
	}
	if n := ks.fetches.Load(); n != 3 {
		t.Errorf("%d fetches, want a refresh attempt", n)
	}
}

func TestRemoteKeySetFailures(t *testing.T) {
	a, _ := keys(t)
	big := `{"keys":[],"pad":"` + strings.Repeat("x", maxJWKSBytes) + `"}`
	for _, tc := range []struct {
		name, doc string
		status    int
		want      string
	}{
		{"server error", "oops", 500, "status 500"},
		{"not a key set", "<html>", 200, "invalid JSON"},
		{"too large", big, 200, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := startKeyServer(t, "127.0.181.31:0", tc.doc)
			ks.set(tc.doc, tc.status)
			tr := &http.Transport{Proxy: nil}
			defer tr.CloseIdleConnections()
			v, _ := New(istioConfig(&resource.JWTProvider{Issuer: "iss", RemoteJWKS: &resource.RemoteJWKS{URI: ks.url, Timeout: time.Second, CacheDuration: time.Minute}}),
				Options{HTTPClient: &http.Client{Transport: tr}})
			res := v.Verify(context.Background(), request(http.Header{"Authorization": {"Bearer " + sign(t, a, "a", map[string]any{"iss": "iss"})}}, "/"), "/")
			if res.Status != JWKSFetchFailed || res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
				t.Errorf("status %v err %v, want JWKSFetchFailed with %q", res.Status, res.Err, tc.want)
			}
			if res.Status.String() != "Jwks remote fetch is failed" {
				t.Errorf("body %q", res.Status)
			}
		})
	}
}

// FuzzParseToken: the token parser never panics and only accepts three-part tokens.
func FuzzParseToken(f *testing.F) {
	a, _ := keys(f)
	f.Add(sign(f, a, "a", map[string]any{"iss": "i", "aud": []string{"x"}}))
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln")
	f.Add("..")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, st := parseToken(raw)
		if st == OK {
			if strings.Count(raw, ".") != 2 || tok == nil || tok.payload == nil {
				t.Fatalf("accepted %q", raw)
			}
			_ = verifySignature(tok, nil)
		}
	})
}

// FuzzParseJWKS: a key set document never panics the parser, and an accepted one has
// public keys only.
func FuzzParseJWKS(f *testing.F) {
	a, _ := keys(f)
	f.Add(jwks(f, map[string]*rsa.PrivateKey{"a": a}))
	f.Add(`{"keys":[]}`)
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)
	f.Add(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		keys, err := parseJWKS([]byte(doc))
		if err != nil {
			return
		}
		for _, k := range keys {
			if !k.IsPublic() {
				t.Fatalf("accepted a private key from %q", doc)
			}
		}
	})
}
