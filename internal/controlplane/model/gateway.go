package model

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Gateways: which Gateway objects a router proxy serves and how their servers merge per
// port, as Istio's mergeGateways does. VirtualService binding is in gateway_bind.go.

// ProxyAnnotation on a WorkloadEntry set to ProxyRouter says the workload is a gateway
// (a router proxy, Istio's istio-ingressgateway) rather than a sidecar.
const ProxyAnnotation = "lucid.dev/proxy"

// Gateway is one Gateway object.
type Gateway struct {
	Name      string
	Namespace string
	Selector  map[string]string // spec.selector; empty selects every router
	Spec      *networkingv1alpha3.Gateway
	Config    *config.Object
}

// Key is the gateway's "namespace/name", the form VirtualServices bind to.
func (g *Gateway) Key() string { return g.Namespace + "/" + g.Name }

// GatewayHost is one server host: "ns/host" binds VirtualServices of namespace ns only,
// a bare host (or "*/host") those of any namespace (Namespace "").
type GatewayHost struct {
	Namespace string
	Host      string
}

// GatewayServer is one server of a Gateway.
type GatewayServer struct {
	Spec     *networkingv1alpha3.Server
	Gateway  *Gateway
	Index    int    // position in spec.servers
	Protocol string // upper-case: HTTP, HTTP2, GRPC, HTTPS, TLS, TCP, ...
	Hosts    []GatewayHost
	// RouteName is the RDS name of a server that terminates HTTP: "http.<port>" for
	// plaintext servers (shared by every such server on the port),
	// "https.<port>.<port name>.<gateway>.<namespace>" for HTTPS servers that terminate
	// TLS; "" for TCP, TLS and passthrough servers.
	RouteName string
}

// Field is the server's field path in its Gateway, "spec.servers[i]".
func (s *GatewayServer) Field() string { return fmt.Sprintf("spec.servers[%d]", s.Index) }

// Port is the server's port number.
func (s *GatewayServer) Port() uint32 { return s.Spec.GetPort().GetNumber() }

// PlaintextHTTP reports whether the server speaks HTTP without TLS (HTTP, HTTP2, GRPC,
// GRPC-WEB; an HTTP server with tls.httpsRedirect is still plaintext).
func (s *GatewayServer) PlaintextHTTP() bool { return httpProtocol(s.Protocol) }

// TerminatesHTTPS reports whether the server is HTTPS with TLS terminated at the gateway.
func (s *GatewayServer) TerminatesHTTPS() bool {
	return s.Protocol == "HTTPS" && s.Spec.GetTls() != nil && !s.Passthrough()
}

// Passthrough reports whether the server forwards TLS without terminating it.
func (s *GatewayServer) Passthrough() bool {
	t := s.Spec.GetTls()
	return t != nil && !httpProtocol(s.Protocol) &&
		(t.GetMode() == networkingv1alpha3.ServerTLSSettings_PASSTHROUGH || t.GetMode() == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH)
}

// TLSServer is Istio's IsTLSServer: TLS settings on a non-HTTP protocol (HTTPS, TLS).
// A port opened by such a server is a TLS port whose filter chains match on SNI.
func (s *GatewayServer) TLSServer() bool { return s.Spec.GetTls() != nil && !httpProtocol(s.Protocol) }

// SNIHosts are the server's hosts without their namespace part, sorted and unique: the
// server names its TLS filter chain matches.
func (s *GatewayServer) SNIHosts() []string {
	out := make([]string, 0, len(s.Hosts))
	for _, h := range s.Hosts {
		out = append(out, h.Host)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func httpProtocol(p string) bool {
	switch p {
	case "HTTP", "HTTP2", "GRPC", "GRPC-WEB":
		return true
	}
	return false
}

// GatewayPort is everything a router serves on one port, servers in merge order
// (gateways by creation order, then each gateway's servers in order).
type GatewayPort struct {
	Number  uint32
	Servers []*GatewayServer
}

// SkippedServer is a server Istio's merge drops, with the reason.
type SkippedServer struct {
	Server *GatewayServer
	Reason string
}

// MergedGateway is what one router proxy serves: the servers of every Gateway whose
// selector its labels satisfy, merged per port.
type MergedGateway struct {
	Ports   []*GatewayPort // sorted by port number
	Skipped []SkippedServer
}

func (b *builder) addGateway(o *config.Object) {
	spec := o.Spec.(*networkingv1alpha3.Gateway)
	g := &Gateway{Name: o.Name, Namespace: o.Namespace, Selector: spec.GetSelector(), Spec: spec, Config: o}
	b.m.gateways = append(b.m.gateways, g)
	b.m.gatewayByKey[g.Key()] = g
}

// Gateways returns every Gateway in creation order.
func (m *Mesh) Gateways() []*Gateway { return m.gateways }

// Gateway returns the Gateway "namespace/name", or nil.
func (m *Mesh) Gateway(key string) *Gateway { return m.gatewayByKey[key] }

// GatewaysFor returns the Gateways that select router proxy p (their selector is a
// subset of p's labels; Gateways of every namespace count), in creation order. A sidecar
// gets none.
func (m *Mesh) GatewaysFor(p *Proxy) []*Gateway {
	if p.Type != ProxyRouter {
		return nil
	}
	var out []*Gateway
	for _, g := range m.gateways {
		if selects(g.Selector, p.Labels) {
			out = append(out, g)
		}
	}
	return out
}

// MergeGateways merges the servers of the Gateways selecting p per port as Istio does:
//   - servers with TLS settings may not repeat a host already used by another TLS-set
//     server on the port (Envoy would reject two filter chains with the same SNI match);
//   - a port first used by a plaintext server takes further plaintext HTTP servers only
//     (their virtual hosts share route "http.<port>"): another protocol is dropped;
//   - a port first used by a TLS server takes further servers with TLS settings (told
//     apart by SNI); a server without TLS settings is dropped.
//
// Dropped servers are listed in Skipped.
func (m *Mesh) MergeGateways(p *Proxy) *MergedGateway {
	out := &MergedGateway{}
	byPort := map[uint32]*GatewayPort{}
	plaintext := map[uint32]*GatewayServer{} // port → the plaintext server that opened it
	tlsHosts := map[uint32]map[string]*GatewayServer{}
	routeNames := map[string]bool{}
	for _, g := range m.GatewaysFor(p) {
		for i, spec := range g.Spec.GetServers() {
			if spec.GetPort() == nil {
				continue // rejected by validation
			}
			s := NewGatewayServer(g, i, spec)
			port := s.Port()
			if spec.GetTls() != nil {
				if tlsHosts[port] == nil {
					tlsHosts[port] = map[string]*GatewayServer{}
				}
				if dup, prev := duplicateHost(s, tlsHosts[port]); prev != nil {
					out.skip(s, "host %q is already served on port %d by Gateway %s %s (two TLS filter chains cannot match the same SNI)", dup, port, prev.Gateway.Key(), prev.Field())
					continue
				}
			}
			gp := byPort[port]
			if gp == nil {
				gp = &GatewayPort{Number: port}
				byPort[port] = gp
				if !s.TLSServer() {
					plaintext[port] = s
				}
			} else if first := plaintext[port]; first != nil {
				if !first.PlaintextHTTP() || !s.PlaintextHTTP() {
					out.skip(s, "port %d already serves %s (Gateway %s %s); only plaintext HTTP servers share a plaintext port", port, first.Protocol, first.Gateway.Key(), first.Field())
					continue
				}
			} else {
				if s.RouteName != "" && routeNames[s.RouteName] {
					out.skip(s, "route %s is already defined on port %d; HTTPS servers need distinct port names", s.RouteName, port)
					continue
				}
				if spec.GetTls() == nil {
					first := gp.Servers[0]
					out.skip(s, "port %d already serves TLS (Gateway %s %s); a server without tls settings cannot share it", port, first.Gateway.Key(), first.Field())
					continue
				}
			}
			if s.RouteName != "" {
				routeNames[s.RouteName] = true
			}
			gp.Servers = append(gp.Servers, s)
		}
	}
	for _, gp := range byPort {
		out.Ports = append(out.Ports, gp)
	}
	slices.SortFunc(out.Ports, func(a, b *GatewayPort) int { return cmp.Compare(a.Number, b.Number) })
	return out
}

func (mg *MergedGateway) skip(s *GatewayServer, format string, args ...any) {
	mg.Skipped = append(mg.Skipped, SkippedServer{Server: s, Reason: fmt.Sprintf(format, args...)})
}

// duplicateHost records s's hosts in known unless one is there already; it returns the
// first duplicate and the server that has it.
func duplicateHost(s *GatewayServer, known map[string]*GatewayServer) (string, *GatewayServer) {
	for _, h := range s.Spec.GetHosts() {
		if prev := known[h]; prev != nil {
			return h, prev
		}
	}
	for _, h := range s.Spec.GetHosts() {
		known[h] = s
	}
	return "", nil
}

// NewGatewayServer describes server i (spec) of gateway g.
func NewGatewayServer(g *Gateway, i int, spec *networkingv1alpha3.Server) *GatewayServer {
	s := &GatewayServer{Spec: spec, Gateway: g, Index: i, Protocol: strings.ToUpper(spec.GetPort().GetProtocol())}
	for _, h := range spec.GetHosts() {
		s.Hosts = append(s.Hosts, parseGatewayHost(h, g.Namespace))
	}
	port := itoa(spec.GetPort().GetNumber())
	switch {
	case s.PlaintextHTTP():
		s.RouteName = "http." + port
	case s.TerminatesHTTPS():
		s.RouteName = "https." + port + "." + spec.GetPort().GetName() + "." + g.Name + "." + g.Namespace
	}
	return s
}

// parseGatewayHost reads "host", "*/host", "./host" (the gateway's namespace) and "ns/host".
func parseGatewayHost(h, gwNamespace string) GatewayHost {
	ns, host, ok := strings.Cut(h, "/")
	if !ok {
		return GatewayHost{Host: strings.ToLower(h)}
	}
	switch ns {
	case "*":
		ns = ""
	case ".":
		ns = gwNamespace
	}
	return GatewayHost{Namespace: ns, Host: strings.ToLower(host)}
}

// checkGateways warns about servers Lucid does not serve: TLS modes it cannot build
// (every Gateway), and servers a router WorkloadEntry (annotated lucid.dev/proxy: router)
// will not serve because Istio's merge drops them.
func (b *builder) checkGateways() {
	for _, g := range b.m.gateways {
		for i, s := range g.Spec.GetServers() {
			if msg := unsupportedTLS(s.GetTls()); msg != "" {
				b.warn(g.Config, fmt.Sprintf("spec.servers[%d].tls", i), "%s; Lucid gives this server no filter chain", msg)
			}
		}
	}
	seen := map[string]bool{}
	for _, w := range b.m.workloads {
		if w.Config.Annotations[ProxyAnnotation] != ProxyRouter {
			continue
		}
		p := &Proxy{Type: ProxyRouter, Name: w.Name, Namespace: w.Namespace, Labels: w.Labels}
		for _, sk := range b.m.MergeGateways(p).Skipped {
			o := sk.Server.Gateway.Config
			msg := fmt.Sprintf("server not served by gateway %s/%s: %s", w.Namespace, w.Name, sk.Reason)
			if k := o.Key() + sk.Server.Field() + msg; !seen[k] {
				seen[k] = true
				b.warn(o, sk.Server.Field(), "%s", msg)
			}
		}
	}
}

// unsupportedTLS says why Lucid cannot serve a server's TLS settings yet ("" when it can).
func unsupportedTLS(t *networkingv1alpha3.ServerTLSSettings) string {
	switch {
	case t == nil:
		return ""
	case t.GetMode() == networkingv1alpha3.ServerTLSSettings_ISTIO_MUTUAL:
		return "tls.mode ISTIO_MUTUAL needs the mesh's own certificates, which Lucid does not issue yet"
	case t.GetMode() == networkingv1alpha3.ServerTLSSettings_AUTO_PASSTHROUGH:
		return "tls.mode AUTO_PASSTHROUGH (SNI-DNAT to mesh services) is not supported yet"
	}
	return ""
}

func itoa(n uint32) string { return fmt.Sprint(n) }
