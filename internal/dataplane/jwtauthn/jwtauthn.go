// Package jwtauthn verifies the JWTs of requests as Envoy's jwt_authn filter does for
// Istio's RequestAuthentication: tokens found in the configured locations (by default
// "Authorization: Bearer …" and the access_token query parameter) are checked for form,
// issuer, time (with clock skew), audiences and signature (RS*, PS*, ES*, EdDSA via
// go-jose) against inline, file or fetched key sets (jwks_uri: cached, refreshed, bounded).
// A request without a token passes (Istio's allow_missing); a request with an invalid one
// gets Envoy's 401 "Jwt verification fails" (or the precise jwt_verify_lib message).
//
// It sits in the request path before the RBAC filters, which read the verified payload:
//
//	xdsclient → resource.JWTAuthn → jwtauthn.New (once per configuration)
//	request → jwtauthn.Verifier.Verify → payload → rbac (request.auth.*) → forward
package jwtauthn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// MetadataNamespace is the dynamic metadata namespace of the verified payload.
const MetadataNamespace = "envoy.filters.http.jwt_authn"

// Options are what a Verifier needs from its surroundings.
type Options struct {
	// HTTPClient fetches remote key sets (jwks_uri); nil uses a client without proxy.
	HTTPClient *http.Client
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// ReadFile reads local_jwks files; nil is os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// Verifier is one compiled jwt_authn filter. It is safe for concurrent use.
type Verifier struct {
	cfg       *resource.JWTAuthn
	providers map[string]*provider
	order     []*provider // providers sorted by name
	all       []location  // every provider's locations, deduplicated
	now       func() time.Time
}

type provider struct {
	cfg       *resource.JWTProvider
	keys      keySource
	locations []location
}

type locationKind int

const (
	inHeader locationKind = iota
	inParam
	inCookie
)

// location is one place a token is looked for.
type location struct {
	kind         locationKind
	name, prefix string
	canonical    string // header name in http.Header's form
}

func (l location) String() string {
	switch l.kind {
	case inParam:
		return "query parameter " + l.name
	case inCookie:
		return "cookie " + l.name
	}
	if l.prefix != "" {
		return fmt.Sprintf("header %s (prefix %q)", l.name, l.prefix)
	}
	return "header " + l.name
}

// New compiles a jwt_authn filter: local key sets are read and parsed now, remote ones on
// first use. A local key set that cannot be read or has no usable key does not refuse the
// configuration (as Envoy, which logs it): that provider's tokens fail with the reason.
func New(cfg *resource.JWTAuthn, o Options) (*Verifier, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 2}}
	}
	v := &Verifier{cfg: cfg, providers: map[string]*provider{}, now: o.Now}
	names := make([]string, 0, len(cfg.Providers))
	for n := range cfg.Providers {
		names = append(names, n)
	}
	slices.Sort(names)
	seen := map[location]bool{}
	for _, n := range names {
		pc := cfg.Providers[n]
		p := &provider{cfg: pc, locations: locationsOf(pc)}
		switch {
		case pc.LocalJWKS != "":
			p.keys = localKeys([]byte(pc.LocalJWKS), nil, "local_jwks")
		case pc.LocalJWKSFile != "":
			doc, err := o.ReadFile(pc.LocalJWKSFile)
			p.keys = localKeys(doc, err, "local_jwks "+pc.LocalJWKSFile)
		case pc.RemoteJWKS != nil:
			p.keys = &remoteKeys{cfg: *pc.RemoteJWKS, client: o.HTTPClient, now: o.Now}
		default:
			p.keys = badKeys{errors.New("no key set configured")}
		}
		v.providers[n] = p
		v.order = append(v.order, p)
		for _, l := range p.locations {
			if !seen[l] {
				seen[l] = true
				v.all = append(v.all, l)
			}
		}
	}
	return v, nil
}

// locationsOf lists where a provider looks for tokens: its from_* fields, or Envoy's
// defaults (Authorization with "Bearer ", then access_token).
func locationsOf(p *resource.JWTProvider) []location {
	var out []location
	for _, h := range p.FromHeaders {
		out = append(out, location{kind: inHeader, name: h.Name, prefix: h.Prefix, canonical: http.CanonicalHeaderKey(h.Name)})
	}
	for _, q := range p.FromParams {
		out = append(out, location{kind: inParam, name: q})
	}
	for _, c := range p.FromCookies {
		out = append(out, location{kind: inCookie, name: c})
	}
	if len(out) == 0 {
		out = []location{
			{kind: inHeader, name: "authorization", prefix: "Bearer ", canonical: "Authorization"},
			{kind: inParam, name: "access_token"},
		}
	}
	return out
}

// Result is the outcome of Verify.
type Result struct {
	Status Status // OK: the request may continue
	// Verified is set when a token was verified: the provider, its issuer and subject,
	// where the token was, and the payload as the RBAC filters see it (space-delimited
	// claims split into lists).
	Verified bool
	Provider string
	Issuer   string
	Subject  string
	Location string
	Payload  map[string]any
	// PayloadKey is payload_in_metadata: the key of Payload in MetadataNamespace ("" when
	// the provider does not publish it).
	PayloadKey string
	// Err details a failure to fetch keys (Status JWKSFetchFailed).
	Err error
	// Token is the failing or verified token's location, issuer and provider, for
	// explanations.
	FailedProvider, FailedIssuer, FailedLocation string

	mutations []headerMutation
}

type headerMutation struct {
	remove bool
	name   string // canonical
	value  string
}

// Principal is Istio's request.auth.principal: "<iss>/<sub>".
func (r *Result) Principal() string {
	if !r.Verified {
		return ""
	}
	return r.Issuer + "/" + r.Subject
}

// Apply makes Envoy's header changes on the request that goes upstream: the verified
// token removed from its header unless the provider forwards it, the payload header
// (forward_payload_header) and claim headers (claim_to_headers) set.
func (r *Result) Apply(h http.Header) {
	for _, m := range r.mutations {
		if m.remove {
			h.Del(m.name)
		} else {
			h.Set(m.name, m.value)
		}
	}
}

// Verify checks r's tokens against the first rule whose path matches path (the request's
// :path, normalised). It does not modify r.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, path string) Result {
	if v.cfg.BypassCORSPreflight && r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
		return Result{Status: OK}
	}
	p := path
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	for i := range v.cfg.Rules {
		rule := &v.cfg.Rules[i]
		if (rule.Path != "" && p == rule.Path) || (rule.Path == "" && strings.HasPrefix(p, rule.Prefix)) {
			run := &verification{v: v, ctx: ctx, r: r, done: map[verifyKey]outcome{}}
			st := run.requirement(&rule.Requires)
			return run.result(st)
		}
	}
	return Result{Status: OK}
}

// verification is one request's evaluation of a requirement tree, remembering each
// (token, provider) check so a token is verified once.
type verification struct {
	v    *Verifier
	ctx  context.Context
	r    *http.Request
	done map[verifyKey]outcome
	ok   *outcome // the first successful verification
	bad  *outcome // the failure reported
}

type verifyKey struct{ token, provider string }

type outcome struct {
	status   Status
	err      error
	tok      *token
	loc      location
	provider *provider
}

// found is a token and where it was.
type found struct {
	raw string
	loc location
}

// extract returns the tokens in locs, each once.
func (x *verification) extract(locs []location) []found {
	var out []found
	add := func(raw string, l location) {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return
		}
		for _, f := range out {
			if f.raw == raw {
				return
			}
		}
		out = append(out, found{raw: raw, loc: l})
	}
	for _, l := range locs {
		switch l.kind {
		case inHeader:
			for _, val := range x.r.Header[l.canonical] {
				if l.prefix == "" {
					add(val, l)
				} else if len(val) >= len(l.prefix) && strings.EqualFold(val[:len(l.prefix)], l.prefix) {
					add(val[len(l.prefix):], l)
				}
			}
		case inParam:
			if x.r.URL != nil && strings.Contains(x.r.URL.RawQuery, l.name+"=") {
				add(x.r.URL.Query().Get(l.name), l)
			}
		case inCookie:
			if c, err := x.r.Cookie(l.name); err == nil {
				add(c.Value, l)
			}
		}
	}
	return out
}

// requirement evaluates one jwt_authn requirement.
func (x *verification) requirement(req *resource.JWTRequirement) Status {
	switch req.Kind {
	case resource.JWTNoRequirement:
		return OK
	case resource.JWTProviderName:
		p := x.v.providers[req.Provider]
		toks := x.extract(p.locations)
		if len(toks) == 0 {
			return Missing
		}
		for _, t := range toks {
			if st := x.check(t, p); st != OK {
				return st
			}
		}
		return OK
	case resource.JWTAllowMissing, resource.JWTAllowMissingOrFailed:
		toks := x.extract(x.v.all)
		for _, t := range toks {
			st := x.check(t, x.byIssuer(t))
			if st != OK {
				if req.Kind == resource.JWTAllowMissingOrFailed {
					return OK
				}
				return st
			}
		}
		return OK
	case resource.JWTRequiresAny:
		last := Missing
		for i := range req.Requirements {
			st := x.requirement(&req.Requirements[i])
			if st == OK {
				return OK
			}
			if st != Missing || last == Missing {
				last = st
			}
		}
		return last
	case resource.JWTRequiresAll:
		for i := range req.Requirements {
			if st := x.requirement(&req.Requirements[i]); st != OK {
				return st
			}
		}
		return OK
	}
	return VerificationFails
}

// byIssuer finds the provider for a token found in t.loc: the one whose issuer is the
// token's and which looks in that location; nil when none.
func (x *verification) byIssuer(t found) *provider {
	tok, st := parseToken(t.raw)
	if st != OK {
		return nil
	}
	for _, p := range x.v.order {
		if p.cfg.Issuer != "" && p.cfg.Issuer != tok.iss {
			continue
		}
		for _, l := range p.locations {
			if l == t.loc {
				return p
			}
		}
	}
	return nil
}

// check verifies one token for one provider (nil: no provider has the token's issuer) in
// jwt_verify_lib's order: form, issuer, time, audiences, keys, signature.
func (x *verification) check(t found, p *provider) Status {
	name := ""
	if p != nil {
		name = p.cfg.Name
	}
	k := verifyKey{t.raw, name}
	if o, ok := x.done[k]; ok {
		return o.status
	}
	o := outcome{loc: t.loc, provider: p}
	o.status = func() Status {
		tok, st := parseToken(t.raw)
		o.tok = tok
		if st != OK {
			return st
		}
		if p == nil || (p.cfg.Issuer != "" && p.cfg.Issuer != tok.iss) {
			return UnknownIssuer
		}
		if st := tok.checkTime(x.v.now(), p.cfg.ClockSkew); st != OK {
			return st
		}
		if !audienceAllowed(p.cfg.Audiences, tok.audiences) {
			return AudienceNotAllowed
		}
		keys, st, err := p.keys.keys(x.ctx, false)
		if st != OK {
			o.err = err
			return st
		}
		st = verifySignature(tok, keys)
		if st == KidAlgMismatch {
			// A key id the cached set does not have: the issuer may have rotated its keys.
			if fresh, fst, _ := p.keys.keys(x.ctx, true); fst == OK {
				st = verifySignature(tok, fresh)
			}
		}
		return st
	}()
	x.done[k] = o
	if o.status == OK && x.ok == nil {
		x.ok = &o
	}
	if o.status != OK && o.status != Missing && x.bad == nil {
		x.bad = &o
	}
	return o.status
}

// result turns the requirement's status into the Result, with the header changes of the
// verified tokens.
func (x *verification) result(st Status) Result {
	res := Result{Status: st}
	if st != OK {
		if x.bad != nil {
			res.Err = x.bad.err
			res.FailedLocation = x.bad.loc.String()
			if x.bad.provider != nil {
				res.FailedProvider = x.bad.provider.cfg.Name
			}
			if x.bad.tok != nil {
				res.FailedIssuer = x.bad.tok.iss
			}
		}
		return res
	}
	if x.ok == nil {
		return res // no token, or failures allowed
	}
	o, p := x.ok, x.ok.provider.cfg
	res.Verified = true
	res.Provider, res.Issuer, res.Subject, res.Location = p.Name, o.tok.iss, o.tok.sub, o.loc.String()
	res.PayloadKey = p.PayloadInMetadata
	res.Payload = normalizePayload(o.tok.payload, p.SpaceDelimitedClaims)
	for _, d := range x.done {
		if d.status != OK || d.provider == nil || d.provider.cfg.Forward || d.loc.kind != inHeader {
			continue
		}
		res.mutations = append(res.mutations, headerMutation{remove: true, name: d.loc.canonical})
	}
	if p.ForwardPayloadHeader != "" {
		res.mutations = append(res.mutations, headerMutation{
			name: http.CanonicalHeaderKey(p.ForwardPayloadHeader), value: base64.RawURLEncoding.EncodeToString(o.tok.rawClaims),
		})
	}
	for _, c := range p.ClaimToHeaders {
		if v, ok := claimString(o.tok.payload, c.Claim); ok {
			res.mutations = append(res.mutations, headerMutation{name: http.CanonicalHeaderKey(c.Header), value: v})
		}
	}
	return res
}

// normalizePayload splits the space-delimited claims (Istio: scope, permission) into
// lists, as normalize_payload_in_metadata does; the token's payload is not modified.
func normalizePayload(p map[string]any, spaceDelimited []string) map[string]any {
	out := p
	copied := false
	for _, c := range spaceDelimited {
		s, ok := p[c].(string)
		if !ok {
			continue
		}
		if !copied {
			out = make(map[string]any, len(p))
			for k, v := range p {
				out[k] = v
			}
			copied = true
		}
		fields := strings.Fields(s)
		l := make([]any, len(fields))
		for i, f := range fields {
			l[i] = f
		}
		out[c] = l
	}
	return out
}

// claimString is claim_to_headers' value of a claim ("a.b" walks nested objects):
// strings as they are, numbers and booleans formatted, lists of strings joined with ",".
func claimString(p map[string]any, name string) (string, bool) {
	var v any = p
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = obj[part]; !ok {
			return "", false
		}
	}
	switch t := v.(type) {
	case string:
		return t, true
	case bool:
		return strconv.FormatBool(t), true
	case float64:
		if t == float64(int64(t)) {
			return strconv.FormatInt(int64(t), 10), true
		}
		return strconv.FormatFloat(t, 'g', -1, 64), true
	case []any:
		parts := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return "", false
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), true
	}
	return "", false
}

// Realm is the www-authenticate value of Envoy's reply: Bearer realm="<uri>", plus
// error="invalid_token" unless the token was missing.
func Realm(st Status, scheme, host, path string) string {
	v := `Bearer realm="` + scheme + "://" + host + path + `"`
	if st != Missing {
		v += `, error="invalid_token"`
	}
	return v
}
