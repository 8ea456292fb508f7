// Package authz runs a listener's authorization filters (resource.AuthFilter, Istio's
// AuthorizationPolicy and RequestAuthentication as Envoy filters) in their configured
// order for one request or connection, and turns a refusal into the local reply Envoy
// sends, with Lucid's explanation.
//
// It sits in the request path between path normalisation and routing:
//
//	request → pathnorm → authz.Chain.CheckHTTP (ext_authz, jwt_authn, rbac) → route → forward
//	connection → authz.Chain.CheckConn (network rbac) → tcp_proxy / HTTP
//
// The filters themselves are rbac, jwtauthn and extauthz; this package only composes them:
// the JWT payload feeds the RBAC filters through dynamic metadata, the CUSTOM action's
// RBAC shadow result decides whether ext_authz is called, the first refusal stops the chain.
package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/extauthz"
	"github.com/lucid-mesh/lucid/internal/dataplane/jwtauthn"
	"github.com/lucid-mesh/lucid/internal/dataplane/rbac"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Istio's shadow rules stat prefixes: dry-run policies, and the CUSTOM action's trigger.
const (
	dryRunAllowPrefix = "istio_dry_run_allow_"
	dryRunDenyPrefix  = "istio_dry_run_deny_"
	extAuthzPrefix    = "istio_ext_authz_"
)

// Options are what the filters need from the proxy.
type Options struct {
	JWT      jwtauthn.Options
	ExtAuthz extauthz.Options
}

// Chain is a listener's (HCM's or filter chain's) compiled authorization filters. It is
// safe for concurrent use; build it once per configuration.
type Chain struct {
	steps    []step
	callsOut bool // a step asks a server (ext_authz)
}

type step struct {
	name string
	rbac *rbac.Filter
	jwt  *jwtauthn.Verifier
	ext  *extauthz.Client
}

// New compiles filters. An error (an unreadable or invalid key set) means the
// configuration must be refused.
func New(filters []resource.AuthFilter, o Options) (*Chain, error) {
	c := &Chain{}
	for i := range filters {
		f := &filters[i]
		s := step{name: f.Name}
		switch {
		case f.RBAC != nil:
			s.rbac = rbac.Compile(f.Name, f.RBAC)
		case f.JWT != nil:
			v, err := jwtauthn.New(f.JWT, o.JWT)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			s.jwt = v
		case f.ExtAuthz != nil:
			s.ext = extauthz.New(f.ExtAuthz, o.ExtAuthz)
			c.callsOut = true
		default:
			continue
		}
		c.steps = append(c.steps, s)
	}
	return c, nil
}

// Empty reports whether the chain has no filter (the common case: no policy applies).
func (c *Chain) Empty() bool { return c == nil || len(c.steps) == 0 }

// CallsOut reports whether the chain asks a server (ext_authz): the request then passes
// through that client's goroutines, which the caller cannot see end.
func (c *Chain) CallsOut() bool { return c != nil && c.callsOut }

// RBACFilters returns the chain's RBAC filters, for their counters.
func (c *Chain) RBACFilters() []*rbac.Filter {
	var out []*rbac.Filter
	for _, s := range c.steps {
		if s.rbac != nil {
			out = append(out, s.rbac)
		}
	}
	return out
}

// Conn is what the chain knows about the connection.
type Conn struct {
	Principal string         // the peer certificate's URI SAN ("" without mTLS)
	Peer      netip.Addr     // the connection's remote address
	Local     netip.AddrPort // the connection's (original) destination
	SNI       string         // TLS server name
}

// HTTPInput is one request.
type HTTPInput struct {
	Conn    Conn
	Request *http.Request // the request as received; not modified
	// Path is the normalised :path (pathnorm), with the query.
	Path string
	// RemoteIP is rbac.RemoteAddress for the request (zero: Conn.Peer).
	RemoteIP netip.Addr
	// Scheme is "https" when the request came over TLS, else "http" (Envoy's realm).
	Scheme string
	// Body is the buffered body for an ext_authz filter that wants it (nil otherwise).
	Body []byte
}

// Reply is a refusal as Envoy sends it, plus Lucid's explanation.
type Reply struct {
	Status  int
	Body    string
	Headers http.Header // extra response headers (www-authenticate, the authorization server's)
	Details string      // response_code_details
	// External is set for an ext_authz refusal: forward gives it Envoy's response flag
	// UAEX (RBAC and JWT refusals carry none).
	External bool
	// Explanation is Lucid's one line (x-lucid-error after the flags, the access log).
	Explanation string
	// Policy is the RBAC policy that denied ("none": no ALLOW policy matched; "" for
	// JWT and ext_authz refusals): the label of the denials-per-policy metric.
	Policy string
}

// Decision is the chain's verdict on a request.
type Decision struct {
	// Reply, when set, is sent instead of forwarding the request.
	Reply *Reply
	// Principal is the verified request.auth.principal ("<iss>/<sub>"), "" without one.
	Principal string
	// DryRun explains each dry-run (istio.io/dry-run) policy that would have denied the
	// request; the access log and the log carry them.
	DryRun []string
	// Audit is true when an AUDIT policy matched (Envoy's access_log_hint).
	Audit bool
	// ResponseHeaders are added to the upstream's response (ext_authz on success).
	ResponseHeaders http.Header

	jwt []*jwtauthn.Result
	ext []*extauthz.Response
}

// ChangesRequest says whether Apply may change the request's headers: a JWT's result or
// an authorization server's answer is part of the decision. A decision of RBAC policies
// alone changes none (forward then keeps an upstream request's fields as they are).
func (d *Decision) ChangesRequest() bool { return len(d.jwt) > 0 || len(d.ext) > 0 }

// Apply makes the filters' changes on the request that goes upstream (h is its header):
// the JWT removed unless forwarded, payload and claim headers, the authorization
// server's headers.
func (d *Decision) Apply(h http.Header) {
	for _, r := range d.jwt {
		r.Apply(h)
	}
	for _, e := range d.ext {
		for _, name := range e.RemoveHeaders {
			h.Del(name)
		}
		for k, vs := range e.UpstreamHeaders {
			h[k] = vs
		}
	}
}

// CheckHTTP runs the chain on one request, stopping at the first refusal.
func (c *Chain) CheckHTTP(ctx context.Context, in *HTTPInput) Decision {
	var d Decision
	if c.Empty() {
		return d
	}
	r := in.Request
	req := rbac.Request{
		Principal:       in.Conn.Principal,
		DirectRemoteIP:  in.Conn.Peer,
		RemoteIP:        in.RemoteIP,
		DestinationIP:   in.Conn.Local.Addr(),
		DestinationPort: uint32(in.Conn.Local.Port()),
		SNI:             in.Conn.SNI,
		HTTP:            true,
		Method:          r.Method,
		Authority:       r.Host,
		Path:            in.Path,
		Headers:         r.Header,
	}
	for _, s := range c.steps {
		switch {
		case s.rbac != nil:
			res := s.rbac.Check(&req)
			d.DryRun = appendDryRun(d.DryRun, s.rbac, &req, res)
			d.Audit = d.Audit || res.Logged
			if !res.Allowed {
				d.Reply = RBACDenied(s.rbac, &req, res)
				return d
			}
		case s.jwt != nil:
			res := s.jwt.Verify(ctx, r, in.Path)
			if res.Status != jwtauthn.OK {
				d.Reply = JWTRejected(&res, in.Scheme, r.Host, in.Path)
				return d
			}
			if res.Verified {
				d.jwt = append(d.jwt, &res)
				d.Principal = res.Principal()
				if res.PayloadKey != "" {
					req.Metadata.Set(jwtauthn.MetadataNamespace, res.PayloadKey, res.Payload)
				}
			}
		case s.ext != nil:
			if !s.ext.Enabled(req.Metadata) {
				continue
			}
			res := s.ext.Check(ctx, r, in.Path, in.Body)
			if !res.Continue() {
				d.Reply = ExtAuthzRefused(s.name, &res, customPolicy(req.Metadata))
				return d
			}
			if res.Status == extauthz.OK {
				d.ext = append(d.ext, &res)
				for k, vs := range res.Headers {
					if d.ResponseHeaders == nil {
						d.ResponseHeaders = http.Header{}
					}
					d.ResponseHeaders[k] = append(d.ResponseHeaders[k], vs...)
				}
			}
		}
	}
	return d
}

// appendDryRun adds the explanation of a dry-run (istio.io/dry-run) denial, if res is one.
func appendDryRun(out []string, f *rbac.Filter, req *rbac.Request, res rbac.Result) []string {
	prefix := f.ShadowRulesStatPrefix()
	if !res.ShadowSet || res.ShadowAllowed || (prefix != dryRunAllowPrefix && prefix != dryRunDenyPrefix) {
		return out
	}
	return append(out, "dry-run: would be denied: "+f.ExplainShadow(req, res))
}

// customPolicy is the CUSTOM policy whose shadow rule triggered ext_authz.
func customPolicy(md rbac.Metadata) string {
	id, _ := md.Fields(rbac.MetadataNamespace)[extAuthzPrefix+rbac.ShadowEffectivePolicyID].(string)
	return id
}

// ConnDecision is the chain's verdict on a connection (network filters).
type ConnDecision struct {
	Allowed bool
	// Details is the connection termination details
	// ("rbac_access_denied_matched_policy[...]"); Explanation Lucid's line for the log.
	Details     string
	Explanation string
	Policy      string
	DryRun      []string
}

// CheckConn runs the network filters on a new connection: a refusal closes it.
func (c *Chain) CheckConn(conn Conn) ConnDecision {
	d := ConnDecision{Allowed: true}
	if c.Empty() {
		return d
	}
	req := rbac.Request{
		Principal:       conn.Principal,
		DirectRemoteIP:  conn.Peer,
		DestinationIP:   conn.Local.Addr(),
		DestinationPort: uint32(conn.Local.Port()),
		SNI:             conn.SNI,
	}
	for _, s := range c.steps {
		switch {
		case s.rbac != nil:
			res := s.rbac.Check(&req)
			d.DryRun = appendDryRun(d.DryRun, s.rbac, &req, res)
			if !res.Allowed {
				d.Allowed, d.Details = false, res.Details()
				d.Explanation = "connection closed by RBAC: " + s.rbac.Explain(&req, res)
				d.Policy = policyLabel(res.PolicyID)
				return d
			}
		case s.ext != nil:
			if !s.ext.Enabled(req.Metadata) {
				continue
			}
			d.Allowed, d.Details = false, extauthz.DetailsError
			d.Explanation = "connection closed by ext_authz " + s.name + ": gRPC authorization services are not supported by Lucid"
			return d
		}
	}
	return d
}

// RBACDenied is the RBAC filter's refusal: Envoy's 403 "RBAC: access denied" with details
// rbac_access_denied_matched_policy[<policy>], and the explanation naming the policy, its
// rule and the attribute that decided (or each policy considered).
func RBACDenied(f *rbac.Filter, req *rbac.Request, res rbac.Result) *Reply {
	return &Reply{
		Status:      http.StatusForbidden,
		Body:        "RBAC: access denied",
		Details:     res.Details(),
		Explanation: "RBAC access denied: " + f.Explain(req, res),
		Policy:      policyLabel(res.PolicyID),
	}
}

func policyLabel(id string) string {
	if id == "" {
		return "none"
	}
	return id
}

// JWTRejected is jwt_authn's refusal: 401 (403 for audiences) with jwt_verify_lib's text
// as the body, www-authenticate and details jwt_authn_access_denied{...}.
func JWTRejected(res *jwtauthn.Result, scheme, host, path string) *Reply {
	if scheme == "" {
		scheme = "http"
	}
	var where []string
	if res.FailedLocation != "" {
		where = append(where, "token in "+res.FailedLocation)
	}
	if res.FailedIssuer != "" {
		where = append(where, fmt.Sprintf("issuer %q", res.FailedIssuer))
	}
	if res.FailedProvider != "" {
		where = append(where, "provider "+res.FailedProvider)
	}
	why := res.Status.String()
	if len(where) > 0 {
		why += " (" + strings.Join(where, ", ") + ")"
	}
	if res.Err != nil {
		why += ": " + res.Err.Error()
	}
	return &Reply{
		Status:      res.Status.HTTPStatus(),
		Body:        res.Status.String(),
		Headers:     http.Header{"Www-Authenticate": {jwtauthn.Realm(res.Status, scheme, host, path)}},
		Details:     res.Status.Details(),
		Explanation: "JWT rejected by RequestAuthentication: " + why,
	}
}

// ExtAuthzRefused is ext_authz's refusal: the authorization server's status, body and
// allowed headers (ext_authz_denied), or status_on_error with no body (ext_authz_error);
// response flag UAEX either way.
func ExtAuthzRefused(filter string, res *extauthz.Response, policy string) *Reply {
	why := res.Explain()
	if policy != "" {
		why += " (CUSTOM " + rbac.PolicyLabel(policy) + ")"
	}
	return &Reply{
		Status:      res.Code,
		Body:        string(res.Body),
		Headers:     res.Headers,
		Details:     res.Details(),
		External:    true,
		Explanation: "denied by ext_authz " + filter + ": " + why,
	}
}
