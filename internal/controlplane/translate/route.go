package translate

import (
	"strings"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostspb "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Istio's default outbound retry policy (retry.DefaultPolicy).
const (
	DefaultRetryOn       = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
	DefaultRetries       = 2
	previousHostsName    = "envoy.retry_host_predicates.previous_hosts"
	hostSelectionRetries = 5
	// maxDirectResponseBody is Istio's limit for direct_response bodies (1 MiB, as validated).
	maxDirectResponseBody = 1 << 20
)

func (g *generator) routes() []proto.Message {
	var out []proto.Message
	for _, p := range g.httpPorts() {
		out = append(out, g.outboundRouteConfig(p))
	}
	return out
}

// outboundRouteConfig is RouteConfiguration "<port>": one virtual host per visible service
// with an HTTP port of that number, then Istio's catch-all.
func (g *generator) outboundRouteConfig(port uint32) *routepb.RouteConfiguration {
	rc := &routepb.RouteConfiguration{
		Name:                           itoa(port),
		ValidateClusters:               wrapperspb.Bool(false),
		MaxDirectResponseBodySizeBytes: wrapperspb.UInt32(maxDirectResponseBody),
		IgnorePortInHostMatching:       true, // as Istio: domains carry no port
	}
	seen := map[string]bool{"*": true}
	for _, s := range g.scope.ServicesOn(port) {
		sp, ok := s.Port(port)
		if !ok || !sp.IsHTTP() {
			continue
		}
		vh := &routepb.VirtualHost{Name: s.Host + ":" + itoa(port), IncludeRequestAttemptCount: true}
		for _, d := range g.domains(s) {
			if !seen[d] {
				seen[d] = true
				vh.Domains = append(vh.Domains, d)
			}
		}
		if len(vh.Domains) == 0 {
			continue
		}
		// A VirtualService none of whose routes apply to this proxy and port does not
		// apply at all (Istio drops it): the service keeps its default route.
		if vs := g.scope.VirtualServiceFor(g.m, s.Host, port); vs != nil {
			vh.Routes = g.vsRoutes(vs, port)
		}
		if len(vh.Routes) == 0 {
			vh.Routes = []*routepb.Route{g.defaultRoute(s.Host, port)}
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	rc.VirtualHosts = append(rc.VirtualHosts, g.catchAll())
	return rc
}

// domains are the Host header values that select a service's virtual host: the host,
// the short forms Istio adds for hosts sharing the proxy's DNS domain (reviews,
// reviews.default, reviews.default.svc), and the service addresses. None carries a port:
// the route configuration ignores the Host's port (ignore_port_in_host_matching), as
// Istio's sidecar routes do, so "reviews:9080" and "reviews:80" select reviews too.
func (g *generator) domains(s *model.Service) []string {
	out := []string{s.Host}
	const k8s = ".svc." + model.DomainSuffix
	if short, ok := strings.CutSuffix(s.Host, k8s); ok && strings.Count(short, ".") == 1 {
		name, ns, _ := strings.Cut(short, ".")
		if ns == g.p.Namespace {
			out = append(out, name, short+".svc", short)
		} else {
			out = append(out, short, short+".svc")
		}
	}
	return append(out, s.Addresses...)
}

// defaultRoute is Istio's route for a service without a VirtualService: everything to
// the service's cluster, no timeout, the mesh's default retry policy, and the route hash
// policy when the service's DestinationRule uses consistent hashing.
func (g *generator) defaultRoute(host string, port uint32) *routepb.Route {
	a := &routepb.RouteAction{
		ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: ClusterName("outbound", port, "", host)},
		RetryPolicy:      retryPolicy(g.m.DefaultHTTPRetryPolicy(), false),
	}
	setTimeout(a, nil)
	if hp := g.hashPolicy(&networkingv1alpha3.Destination{Host: host}, "", port); hp != nil {
		a.HashPolicy = []*routepb.RouteAction_HashPolicy{hp}
	}
	return &routepb.Route{
		Name:      "default",
		Match:     &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}},
		Action:    &routepb.Route_Route{Route: a},
		Decorator: &routepb.Decorator{Operation: host + ":" + itoa(port) + "/*"},
	}
}

func defaultRetryPolicy() *routepb.RetryPolicy {
	return &routepb.RetryPolicy{
		RetryOn:                       DefaultRetryOn,
		NumRetries:                    wrapperspb.UInt32(DefaultRetries),
		RetryHostPredicate:            []*routepb.RetryPolicy_RetryHostPredicate{previousHosts()},
		HostSelectionRetryMaxAttempts: hostSelectionRetries,
	}
}

func previousHosts() *routepb.RetryPolicy_RetryHostPredicate {
	return &routepb.RetryPolicy_RetryHostPredicate{
		Name:       previousHostsName,
		ConfigType: &routepb.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: mustAny(&previoushostspb.PreviousHostsPredicate{})},
	}
}

// catchAll is allow_any (to PassthroughCluster) or block_all (502) per outboundTrafficPolicy.
func (g *generator) catchAll() *routepb.VirtualHost {
	match := &routepb.RouteMatch{PathSpecifier: &routepb.RouteMatch_Prefix{Prefix: "/"}}
	if g.scope.OutboundAllowAny() {
		return &routepb.VirtualHost{
			Name: "allow_any", Domains: []string{"*"}, IncludeRequestAttemptCount: true,
			Routes: []*routepb.Route{{
				Name: "allow_any", Match: match,
				Action: &routepb.Route_Route{Route: passthroughAction()},
			}},
		}
	}
	return &routepb.VirtualHost{
		Name: "block_all", Domains: []string{"*"}, IncludeRequestAttemptCount: true,
		Routes: []*routepb.Route{{
			Name: "block_all", Match: match,
			Action: &routepb.Route_DirectResponse{DirectResponse: &routepb.DirectResponseAction{Status: 502}},
		}},
	}
}

func passthroughAction() *routepb.RouteAction {
	a := &routepb.RouteAction{ClusterSpecifier: &routepb.RouteAction_Cluster{Cluster: PassthroughCluster}}
	setTimeout(a, nil)
	return a
}
