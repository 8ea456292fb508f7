package simulate

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Authorization in a simulation: the proxy normalises the path (forward.NormalizeRequest)
// and runs the chain's authorization filters (authz.Chain) before routing; the simulation
// runs the same code on the request, with the client identity the user names
// (Env.Principal). CUSTOM ext_authz filters are not run: the simulation does not call the
// authorization server, and says so.

// authorizeHTTP normalises r's path and runs the HTTP chain's authorization filters: the
// request to route on, or false when the proxy answers it itself (t.Outcome is set).
func (e *Env) authorizeHTTP(t *Trace, r *http.Request, in *forward.Inbound) (*http.Request, bool) {
	nr, rp := forward.NormalizeRequest(r, forward.PathOptions(in.HTTP), false)
	if rp != nil {
		t.Outcome = Outcome{Status: rp.Status, LucidError: forward.LucidError(0, rp.Explanation), Note: "details " + rp.Details}
		if rp.Location != "" {
			t.Outcome.Note += ", redirect to " + rp.Location
		}
		return r, false
	}
	if nr != r {
		t.Path = nr.URL.RequestURI() + " (normalised)"
	}
	if in.HTTP == nil || len(in.HTTP.Auth) == 0 {
		return nr, true // no AuthorizationPolicy or RequestAuthentication applies here
	}
	filters, skipped := withoutExtAuthz(in.HTTP.Auth)
	c, err := authz.New(filters, authz.Options{})
	if err != nil {
		t.Authz = "the proxy refuses this configuration: " + err.Error()
		return nr, true
	}
	scheme := "http"
	if nr.TLS != nil {
		scheme = "https"
	}
	d := c.CheckHTTP(context.Background(), &authz.HTTPInput{Conn: e.conn(r), Request: nr, Path: nr.URL.RequestURI(), Scheme: scheme})
	var notes []string
	if skipped != "" {
		notes = append(notes, skipped)
	}
	if d.Principal != "" {
		notes = append(notes, "request.auth.principal "+d.Principal)
	}
	notes = append(notes, d.DryRun...)
	if d.Audit {
		notes = append(notes, "an AUDIT policy matched (the access log marks the request)")
	}
	if d.Reply != nil {
		rp := forward.AuthzReply(d.Reply)
		t.Authz = joinNotes("denied ("+rp.Details+")", notes)
		t.Outcome = Outcome{Status: rp.Status, Flag: flagName(rp), Body: rp.Body, LucidError: forward.LucidError(rp.Flag, rp.Explanation)}
		return nr, false
	}
	t.Authz = joinNotes("allowed by "+describeFilters(filters), notes)
	return nr, true
}

// authorizeConn runs a TCP chain's network filters on the connection: false when the
// proxy closes it (t.Outcome is set).
func (e *Env) authorizeConn(t *Trace, fc *resource.FilterChain, r *http.Request) bool {
	if len(fc.Auth) == 0 {
		return true
	}
	filters, skipped := withoutExtAuthz(fc.Auth)
	c, err := authz.New(filters, authz.Options{})
	if err != nil {
		t.Authz = "the proxy refuses this configuration: " + err.Error()
		return true
	}
	d := c.CheckConn(e.conn(r))
	var notes []string
	if skipped != "" {
		notes = append(notes, skipped)
	}
	notes = append(notes, d.DryRun...)
	if !d.Allowed {
		t.Authz = joinNotes("connection refused ("+d.Details+")", notes)
		t.Outcome = Outcome{Closed: "the connection is closed by the network RBAC filter (" + d.Details + ")",
			LucidError: forward.LucidError(0, d.Explanation)}
		return false
	}
	t.Authz = joinNotes("connection allowed by "+describeFilters(filters), notes)
	return true
}

// conn is the connection as the chain sees it: the client identity the user named, the
// destination from the URL.
func (e *Env) conn(r *http.Request) authz.Conn {
	var c authz.Conn
	if p := e.Principal; p != "" {
		if !strings.Contains(p, "://") {
			p = "spiffe://" + p
		}
		c.Principal = p
	}
	if r.TLS != nil {
		c.SNI = r.TLS.ServerName
	}
	return c
}

// withoutExtAuthz leaves out ext_authz filters (the simulation does not call the
// authorization server) and says which it left out.
func withoutExtAuthz(fs []resource.AuthFilter) ([]resource.AuthFilter, string) {
	var out []resource.AuthFilter
	var left []string
	for _, f := range fs {
		if f.ExtAuthz != nil {
			left = append(left, f.Name)
			continue
		}
		out = append(out, f)
	}
	if len(left) == 0 {
		return out, ""
	}
	return out, "not simulated: " + strings.Join(left, ", ") + " (a CUSTOM policy's authorization server is asked by the proxy, not by lucid why)"
}

func describeFilters(fs []resource.AuthFilter) string {
	if len(fs) == 0 {
		return "no filter"
	}
	names := make([]string, 0, len(fs))
	for _, f := range fs {
		n := f.Name
		if f.RBAC != nil && f.RBAC.Rules != nil {
			n += " (" + f.RBAC.Rules.Action.String() + ", " + strconv.Itoa(len(f.RBAC.Rules.Policies)) + " policies)"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

func joinNotes(s string, notes []string) string {
	if len(notes) == 0 {
		return s
	}
	return s + "; " + strings.Join(notes, "; ")
}

func flagName(rp *forward.Reply) string {
	if rp.Flag == 0 {
		return ""
	}
	return rp.Flag.String()
}

// WhyInbound simulates r arriving at the sidecar's inbound port (the URL's port) from a
// client with identity Env.Principal: virtualInbound's chain for the port, path
// normalisation and the authorization filters of the policies that select the workload,
// then the inbound route to the app, or a TCP chain's network filters and tcp_proxy.
func (e *Env) WhyInbound(r *http.Request) *Trace {
	t := &Trace{Method: r.Method, URL: r.URL.String()}
	host, port := proxy.Destination(r)
	dst := net.JoinHostPort(host, strconv.Itoa(int(port)))
	var l *resource.Listener
	for _, cand := range e.Snap.Listeners {
		if cand.UseOriginalDst && cand.Direction == resource.Inbound {
			l = cand
		}
	}
	if l == nil {
		t.ListenerNote = "the proxy has no inbound listener (virtualInbound): it is not a sidecar"
		t.Outcome = Outcome{Closed: fmt.Sprintf("nothing receives inbound traffic on port %d", port)}
		return t
	}
	t.Listener = l.Name
	t.ListenerNote = fmt.Sprintf("inbound, port %d", port)
	fc := proxy.ChainFor(l, uint32(port))
	if proxy.SniffsPlaintext(l, port) {
		// A port without a declared protocol: the chain the sidecar sniffs an HTTP/1.1
		// request into (from a sidecar with an identity: mutual TLS with Istio's HTTP ALPN).
		c := proxy.Connection{DestinationPort: port, TransportProtocol: "raw_buffer", ApplicationProtocols: []string{"http/1.1"}}
		if e.Principal != "" {
			c.TransportProtocol, c.ApplicationProtocols = "tls", []string{"istio-http/1.1", "istio-peer-exchange", "istio"}
		}
		fc = proxy.ChainForConnection(l, c)
		t.ListenerNote += ", protocol not declared: the request is sniffed as HTTP"
	}
	if fc == nil {
		t.Outcome = Outcome{Closed: fmt.Sprintf("no filter chain of %s for port %d", l.Name, port)}
		return t
	}
	t.FilterChain = fc.Name
	if fc.TCP != nil {
		if e.authorizeConn(t, fc, r) {
			e.tcpProxy(t, fc.TCP, dst)
		}
		return t
	}
	if fc.HTTP == nil {
		t.Outcome = Outcome{Closed: "the chain has neither an HTTP connection manager nor a tcp_proxy"}
		return t
	}
	rc, name := proxy.RouteConfigOf(e.Snap, fc.HTTP)
	t.RouteConfig = name
	in := &forward.Inbound{HTTP: fc.HTTP, Routes: compile(rc), RouteConfigName: name, Listener: l.Name, Direction: "inbound", OriginalDst: dst}
	nr, ok := e.authorizeHTTP(t, r, in)
	if !ok {
		return t
	}
	e.routeRequest(t, nr, in)
	return t
}
