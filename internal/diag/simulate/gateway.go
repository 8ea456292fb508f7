package simulate

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// A router (ingress gateway) has no explicit proxy: a client connects to one of its bound
// listeners, the listener picks a filter chain for the connection (proxy.ChainForConnection:
// SNI, transport protocol and ALPN from the ClientHello the TLS inspector reads), the chain
// terminates TLS or not, and then runs HTTP (route configuration → route → cluster) or a
// tcp_proxy. WhyGateway follows that path; failures before HTTP (no listener, no chain, a
// failed handshake) end the connection without a response, as they do on the gateway.

// Conn is a client's connection to a gateway as its listener sees it.
type Conn struct {
	TLS        bool     // the client starts TLS (an https URL)
	ServerName string   // SNI; "" when the client sends none (curl and Go send none for an IP address)
	ALPN       []string // the ClientHello's ALPN list, in the client's order
	ClientCert bool     // the client presents a certificate (for MUTUAL servers)
}

// CurlALPN is the ALPN list curl (and Go's http.Client) offers over TLS.
var CurlALPN = []string{"h2", "http/1.1"}

// ClientConn is the connection curl opens for r: for an https URL, TLS with the URL's host
// as SNI (none for an IP address) and ALPN h2, http/1.1; for http, plaintext.
func ClientConn(r *http.Request) Conn {
	if r.URL == nil || !strings.EqualFold(r.URL.Scheme, "https") {
		return Conn{}
	}
	c := Conn{TLS: true, ALPN: CurlALPN}
	if h := r.URL.Hostname(); net.ParseIP(h) == nil {
		c.ServerName = strings.ToLower(h)
	}
	return c
}

// IsRouter reports whether the configuration is a router's (a gateway's): it binds
// listeners but has no virtualOutbound, the sidecar's explicit proxy.
func (e *Env) IsRouter() bool {
	if e.virtualOutbound() != nil {
		return false
	}
	for _, l := range e.Snap.Listeners {
		if l.BindToPort && !l.UseOriginalDst && l.Direction != resource.Inbound {
			return true
		}
	}
	return false
}

// WhyGateway simulates r sent to a router over connection c: the listener bound on the
// URL's port, the filter chain the proxy picks for c, TLS termination, then the route or
// the tcp_proxy, with the explanations the gateway gives.
func (e *Env) WhyGateway(r *http.Request, c Conn) *Trace {
	t := &Trace{Method: r.Method, URL: r.URL.String()}
	host, port := proxy.Destination(r)
	dst := net.JoinHostPort(host, strconv.Itoa(int(port)))
	l := e.gatewayListener(port)
	if l == nil {
		t.ListenerNote = fmt.Sprintf("the gateway has no listener on port %d", port)
		t.Outcome = Outcome{Closed: fmt.Sprintf("connection refused: nothing listens on port %d (the gateway's listeners: %s); "+
			"a Gateway server for the port that selects this gateway opens one", port, e.gatewayPorts())}
		return t
	}
	t.Listener = l.Name
	t.ListenerNote = fmt.Sprintf("gateway listener for port %d", port)
	inspected := proxy.InspectsTLS(l)
	cc := proxy.Connection{DestinationPort: port, TransportProtocol: "raw_buffer"}
	if c.TLS && inspected {
		cc.TransportProtocol, cc.ServerName, cc.ApplicationProtocols = "tls", c.ServerName, c.ALPN
	}
	t.Connection = describeConn(c, inspected)
	fc := proxy.ChainForConnection(l, cc)
	if fc == nil {
		t.Outcome = Outcome{Closed: "no filter chain matches the connection (filter_chain_not_found): the gateway closes it without a response; " +
			"its chains accept " + acceptedNames(l)}
		return t
	}
	t.FilterChain = describeChain(l, fc)
	switch {
	case fc.TLS != nil && !c.TLS:
		t.TLS = describeTLS(fc.TLS, nil)
		t.Outcome = Outcome{Closed: "the chain terminates TLS but the client sent plaintext: the TLS handshake fails and the gateway " +
			"closes the connection (logged at info: \"TLS handshake failed\"); use https://", Counter: sslCounter(l, "connection_error")}
		return t
	case fc.TLS == nil && c.TLS && fc.HTTP != nil:
		t.Outcome = Outcome{Closed: "the chain serves plaintext HTTP but the client starts TLS: the gateway answers its ClientHello with " +
			"400 Bad Request and closes, and the client's handshake fails; use http://, or a port whose Gateway server has tls"}
		return t
	case fc.TLS != nil:
		t.TLS = describeTLS(fc.TLS, c.ALPN)
		if fc.TLS.RequireClientCertificate && !c.ClientCert {
			t.TLS = describeTLS(fc.TLS, nil) // no protocol: the handshake does not finish
			t.Outcome = Outcome{Closed: "the chain requires a client certificate (tls.mode MUTUAL) and the client sent none: the handshake fails " +
				"and the gateway closes the connection (logged at info: \"TLS handshake failed\"); pass --client-cert if the client has one",
				Counter: sslCounter(l, "fail_verify_no_cert") + ", " + sslCounter(l, "connection_error")}
			return t
		}
	}
	switch {
	case fc.TCP != nil:
		if e.authorizeConn(t, fc, r) { // authz.go
			e.tcpProxy(t, fc.TCP, dst)
		}
		return t
	case fc.HTTP == nil:
		t.Outcome = Outcome{Closed: "the chain has neither an HTTP connection manager nor a tcp_proxy"}
		return t
	}
	rc, name := proxy.RouteConfigOf(e.Snap, fc.HTTP)
	t.RouteConfig = name
	if fc.TLS != nil {
		r = overTLS(r, c) // the request the chain hands to the router arrived over TLS
	} else if cp := proxy.PlaintextRoutes(rc); cp != nil { // require_tls, as the proxy applies it
		rc = cp
	}
	in := &forward.Inbound{HTTP: fc.HTTP, Routes: compile(rc), RouteConfigName: name, Listener: l.Name, OriginalDst: dst}
	r, ok := e.authorizeHTTP(t, r, in) // authz.go: path normalisation, the gateway's policies
	if !ok {
		return t
	}
	e.routeRequest(t, r, in)
	if fc.TLS == nil && t.VirtualHost != "" && requiresTLS(rc, t.VirtualHost) {
		t.Route = "(require_tls)"
		t.Routes = nil
		t.Outcome.Note = strings.Replace(t.Outcome.Note, "(configured by the route; no x-lucid-error)",
			"(virtual host "+t.VirtualHost+" has require_tls: the Gateway server's tls.httpsRedirect; no x-lucid-error)", 1)
	}
	return t
}

// overTLS is r as a chain that terminates TLS hands it on: with the connection's state
// (the redirects' scheme and :scheme matches read it).
func overTLS(r *http.Request, c Conn) *http.Request {
	r = r.Clone(r.Context())
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: c.ServerName}
	return r
}

// tcpProxy is a tcp_proxy chain: the connection goes to the cluster's endpoint, or is
// closed with the access log's flag and explanation, as forward.TCPUpstream decides.
func (e *Env) tcpProxy(t *Trace, tp *resource.TCPProxy, dst string) {
	t.Route = "tcp_proxy " + tp.StatPrefix
	a := &resource.RouteAction{Cluster: tp.Cluster, WeightedClusters: tp.WeightedClusters}
	t.Candidates = e.candidates(nil, a, func(name string) (*cluster.Cluster, *cluster.Host, *forward.Reply) {
		return forward.TCPUpstream(e.clusters, name, dst)
	})
	for i := range t.Candidates {
		t.Candidates[i].Outcome = asTCP(t.Candidates[i].Outcome)
	}
	o := asTCP(e.summarize(t.Candidates, a, ""))
	if o.Forwarded() {
		o.Note = joinNote(o.Note, "TCP: the connection's bytes are proxied as they come (the request is not parsed)")
	}
	t.Outcome = o
}

// asTCP turns a local reply into what a tcp_proxy does instead: it closes the connection;
// the flag and explanation go to the access log only.
func asTCP(o Outcome) Outcome {
	if o.Flag == "" {
		return o
	}
	return Outcome{Flag: o.Flag, LucidError: o.LucidError, Note: o.Note,
		Closed: "the tcp_proxy has no upstream to connect to: the gateway closes the connection (response flag " + o.Flag + " in the access log)"}
}

// gatewayListener is the router's listener bound on port.
func (e *Env) gatewayListener(port uint16) *resource.Listener {
	var best *resource.Listener
	for _, l := range e.Snap.Listeners {
		if l.BindToPort && !l.UseOriginalDst && l.Address.Port() == port && (best == nil || l.Name < best.Name) {
			best = l
		}
	}
	return best
}

func (e *Env) gatewayPorts() string {
	var ps []string
	for _, l := range e.Snap.Listeners {
		if l.BindToPort && !l.UseOriginalDst {
			ps = append(ps, l.Name)
		}
	}
	if len(ps) == 0 {
		return "none"
	}
	slices.Sort(ps)
	return strings.Join(ps, ", ")
}

func describeConn(c Conn, inspected bool) string {
	if !c.TLS {
		return "plaintext"
	}
	s := "TLS, SNI " + dashIfEmpty(c.ServerName) + ", ALPN " + dashIfEmpty(strings.Join(c.ALPN, ","))
	if c.ClientCert {
		s += ", client certificate"
	}
	if !inspected {
		s += " (the listener has no TLS inspector: chains are chosen without SNI)"
	}
	return s
}

// describeChain names the chosen chain and what it matches.
func describeChain(l *resource.Listener, fc *resource.FilterChain) string {
	name := fc.Name
	if name == "" {
		name = "default chain"
		for i := range l.FilterChains {
			if &l.FilterChains[i] == fc {
				name = "#" + strconv.Itoa(i+1)
			}
		}
	}
	m := fc.Match
	var parts []string
	if len(m.ServerNames) > 0 {
		parts = append(parts, "SNI "+strings.Join(m.ServerNames, ","))
	}
	if m.TransportProtocol != "" {
		parts = append(parts, "transport "+m.TransportProtocol)
	}
	if len(m.ApplicationProtocols) > 0 {
		parts = append(parts, "ALPN "+strings.Join(m.ApplicationProtocols, ","))
	}
	if m.DestinationPort != 0 {
		parts = append(parts, "port "+strconv.Itoa(int(m.DestinationPort)))
	}
	match := "matches every connection"
	if len(parts) > 0 {
		match = "matches " + strings.Join(parts, ", ")
	}
	return name + " (" + match + ")"
}

// acceptedNames lists the SNI names the listener's chains match, for a connection no
// chain takes.
func acceptedNames(l *resource.Listener) string {
	var names []string
	for _, fc := range l.FilterChains {
		names = append(names, fc.Match.ServerNames...)
	}
	if len(names) == 0 {
		return "no connection like this one"
	}
	return "SNI " + strings.Join(names, ", ")
}

// describeTLS says how a chain terminates TLS and, with the client's ALPN list, which
// protocol the handshake settles on (the server's preference, as Go's TLS picks it).
func describeTLS(d *resource.DownstreamTLS, clientALPN []string) string {
	mode := "SIMPLE"
	if d.RequireClientCertificate {
		mode = "MUTUAL"
	}
	s := "terminated (" + mode
	if len(d.Certificates) > 0 && d.Certificates[0].Chain.Filename != "" {
		s += ", certificate " + d.Certificates[0].Chain.Filename
	}
	s += ")"
	if clientALPN == nil {
		return s
	}
	proto := "http/1.1 (no ALPN agreed)"
	for _, p := range d.ALPN {
		if slices.Contains(clientALPN, p) {
			proto = p
			break
		}
	}
	return s + ", ALPN " + proto
}

func sslCounter(l *resource.Listener, name string) string {
	return "listener." + l.Name + ".ssl." + name
}

func requiresTLS(rc *resource.RouteConfig, vhost string) bool {
	if rc == nil {
		return false
	}
	for _, vh := range rc.VirtualHosts {
		if vh.Name == vhost {
			return vh.RequireTLS != resource.RequireTLSNone
		}
	}
	return false
}
