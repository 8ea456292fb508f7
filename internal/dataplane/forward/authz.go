package forward

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/rbac"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Authorization on the request path: right after path normalisation and before routing,
// the listener's authorization chain (Inbound.Authz: Istio's CUSTOM ext_authz,
// RequestAuthentication's jwt_authn, then the AUDIT, DENY and ALLOW RBAC filters) decides
// on the request with its normalised path; on an opaque TCP chain the network filters
// decide on the connection before tcp_proxy picks an upstream. A refusal is Envoy's local
// reply (403 "RBAC: access denied", 401 from jwt_authn, the authorization server's answer
// with flag UAEX) with x-lucid-error naming the policy, the rule and the attribute.

// authorize runs the chain on the request: false when it has been answered.
func (x *exchange) authorize() bool {
	if x.in.Authz.Empty() {
		return true // inlined: no call when the listener has no chain
	}
	return x.authorizeChain()
}

// authorizeChain is authorize with a chain to run.
func (x *exchange) authorizeChain() bool {
	c := x.in.Authz
	r := x.r
	in := authz.HTTPInput{
		Conn:    httpConn(r, &x.in),
		Request: r,
		Path:    requestPath(r.URL),
		Scheme:  requestScheme(r),
	}
	if h := x.in.HTTP; h != nil {
		in.RemoteIP = rbac.RemoteAddress(in.Conn.Peer, r.Header["X-Forwarded-For"], h.UseRemoteAddress, h.XFFNumTrustedHops)
	}
	if want, maxBytes, partial := c.RequestBody(); want { // authz_body.go
		var ok bool
		if in.Body, ok = x.checkBody(maxBytes, partial); !ok {
			return false
		}
		in.Request = x.r
	}
	d := c.CheckHTTP(r.Context(), &in)
	for _, dr := range d.DryRun {
		x.info.Notes = append(x.info.Notes, dr)
		x.f.log.Info("authorization dry-run", "path", in.Path, "explanation", dr)
	}
	if d.Audit {
		x.info.Notes = append(x.info.Notes, "audit: an AUDIT AuthorizationPolicy matched")
	}
	if d.Principal != "" {
		x.info.Notes = append(x.info.Notes, "request.auth.principal="+d.Principal)
	}
	if rp := d.Reply; rp != nil {
		if rp.Policy != "" {
			x.f.countDenial(rp.Policy)
		}
		x.localReply(AuthzReply(rp), rp.Headers)
		return false
	}
	x.authzDecision = &d
	return true
}

// AuthzReply is the local reply for the chain's refusal: Envoy's status, body and details,
// response flag UAEX for ext_authz (none for RBAC and JWT), and the explanation; its
// x-lucid-error is LucidError(Flag, Explanation) even without a flag. `lucid why` uses it.
func AuthzReply(rp *authz.Reply) *Reply {
	var flag streaminfo.Flag
	if rp.External {
		flag = streaminfo.UnauthorizedExternalService
	}
	return &Reply{Status: rp.Status, Flag: flag, Details: rp.Details, Body: rp.Body, Explanation: rp.Explanation}
}

// applyAuthz makes the chain's changes on the upstream request headers (the JWT removed
// unless forwarded, claim headers, the authorization server's headers); prepare calls it.
func (x *exchange) applyAuthz() {
	// Inlined: set only by a chain that ran, and an RBAC-only chain's leaves the fields
	// as they are (listed, uplist.go).
	if d := x.authzDecision; d != nil && d.ChangesRequest() {
		d.Apply(x.upHeader())
	}
}

// authzResponseHeaders adds the authorization server's response headers (ext_authz on
// success) to the response going downstream.
func (x *exchange) authzResponseHeaders(h http.Header) {
	if x.authzDecision == nil {
		return
	}
	for k, vs := range x.authzDecision.ResponseHeaders {
		h[k] = append(h[k], vs...)
	}
}

// localReply sends a reply the proxy makes itself that carries an explanation whether or
// not it has a response flag (path normalisation, RBAC and JWT refusals have none, as in
// Envoy; ext_authz has UAEX), with extra headers (www-authenticate, the authorization
// server's).
func (x *exchange) localReply(rp *Reply, extra http.Header) {
	info := x.info
	info.Flags |= rp.Flag
	info.ResponseCode = rp.Status
	info.ResponseCodeDetails = rp.Details
	info.LucidError = LucidError(info.Flags, rp.Explanation)
	h := x.w.Header()
	for k, vs := range extra {
		h[k] = append(h[k], vs...)
	}
	h.Set("X-Lucid-Error", info.LucidError)
	if rp.Location != "" {
		h.Set("Location", rp.Location)
	}
	if !x.writeGRPCLocal(rp.Status, rp.Body) {
		x.writeLocal(rp.Status, rp.Body)
	}
}

// httpConn is what the chain knows about the request's connection.
func httpConn(r *http.Request, in *Inbound) authz.Conn {
	c := authz.Conn{Peer: in.RemoteAddr.Addr().Unmap(), Local: in.LocalAddr}
	if r.TLS != nil {
		c.SNI = r.TLS.ServerName
		c.Principal = PeerPrincipal(r.TLS)
	}
	return c
}

// PeerPrincipal is the mTLS identity of the peer as Envoy's RBAC principals match it: the
// first URI SAN of its certificate ("spiffe://cluster.local/ns/foo/sa/bar"; Istio's
// source.principal is it without "spiffe://"), "" without a client certificate. This is
// the one place authorization learns the peer's identity: a connection whose TLS the
// proxy did not terminate itself has none here.
func PeerPrincipal(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.PeerCertificates) == 0 || len(cs.PeerCertificates[0].URIs) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].URIs[0].String()
}

// authorizeConn runs the network filters on an opaque TCP connection: false when the
// connection is to be closed (the record has the termination details and explanation).
func (f *Forwarder) authorizeConn(down net.Conn, in *Inbound, info *streaminfo.Info) bool {
	c := in.Authz
	if c.Empty() {
		return true
	}
	conn := authz.Conn{Peer: info.DownstreamRemoteAddress.Addr().Unmap(), Local: in.LocalAddr}
	if tc, ok := down.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		conn.SNI, conn.Principal = cs.ServerName, PeerPrincipal(&cs)
	}
	d := c.CheckConn(conn)
	info.Notes = append(info.Notes, d.DryRun...)
	if d.Allowed {
		return true
	}
	f.countDenial(d.Policy)
	info.ConnectionTerminationDetails = d.Details
	info.LucidError = LucidError(info.Flags, d.Explanation)
	f.log.Debug("tcp: connection refused by authorization", "listener", in.Listener, "error", info.LucidError)
	return false
}

// denials counts the requests and connections each policy refused.
type denials struct {
	m sync.Map // policy label → *atomic.Uint64
}

func (f *Forwarder) countDenial(policy string) {
	v, ok := f.denied.m.Load(policy)
	if !ok {
		v, _ = f.denied.m.LoadOrStore(policy, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// EachAuthzStat emits rbac.policy.<policy>.denied for each policy that refused a request
// or a connection since the proxy started ("none": no ALLOW policy matched), a
// stats.CounterSource; Prometheus sees envoy_rbac_policy_denied{policy="..."}.
func (f *Forwarder) EachAuthzStat(emit func(name string, value uint64)) {
	f.denied.m.Range(func(k, v any) bool {
		emit("rbac.policy."+k.(string)+".denied", v.(*atomic.Uint64).Load())
		return true
	})
}
