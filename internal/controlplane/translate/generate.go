// Package translate turns the mesh model into the Envoy v3 resources one proxy runs:
// Listeners, RouteConfigurations, Clusters and ClusterLoadAssignments with Istio's names
// and behaviour. It sits between the model and the ADS server:
//
//	model (Mesh, Proxy) → translate (Generate) → ads (snapshot per proxy)
//
// Generate is pure and deterministic: the same mesh and proxy give the same resources in
// the same order, so snapshots hash stably.
package translate

import (
	"cmp"
	"math"
	"slices"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Names of Istio's static clusters and listeners.
const (
	PassthroughCluster        = "PassthroughCluster"
	BlackHoleCluster          = "BlackHoleCluster"
	InboundPassthroughCluster = "InboundPassthroughCluster" //nolint:gosec // G101: a cluster name, not a credential
	VirtualOutbound           = "virtualOutbound"
	VirtualInbound            = "virtualInbound"
	OutboundPort              = 15001
	InboundPort               = 15006
)

// Resources is everything one proxy runs. Each list is sorted by resource name.
type Resources struct {
	Listeners []proto.Message // *listenerpb.Listener
	Routes    []proto.Message // *routepb.RouteConfiguration
	Clusters  []proto.Message // *clusterpb.Cluster
	Endpoints []proto.Message // *endpointpb.ClusterLoadAssignment
}

// Generate builds the resources for proxy p. p's Labels are filled from the mesh when nil.
func Generate(m *model.Mesh, p *model.Proxy) *Resources {
	if p.Labels == nil {
		p = m.ResolveProxy(p)
	}
	cl := newGenerator(m, p, nil).classResources()
	own := newGenerator(m, p, nil).ownResources()
	return &Resources{
		Listeners: sortedConcat(cl.listeners, own.listeners),
		Routes:    sortedConcat(cl.routes),
		Clusters:  sortedConcat(cl.clusters, own.clusters),
		Endpoints: sortedConcat(cl.endpoints),
	}
}

func sortedConcat(lists ...[]proto.Message) []proto.Message {
	out := slices.Concat(lists...)
	sortByName(out)
	return out
}

type generator struct {
	m        *model.Mesh
	p        *model.Proxy
	scope    *model.SidecarScope
	services []*model.Service // what the scope makes visible, sorted by host
	cache    *meshCache       // nil: build everything for this proxy alone
}

func newGenerator(m *model.Mesh, p *model.Proxy, cache *meshCache) *generator {
	sc := m.SidecarScope(p)
	return &generator{m: m, p: p, scope: sc, services: sc.Services(), cache: cache}
}

// classResources are what every proxy of p's class (model.Mesh.ProxyClass) gets alike: a
// sidecar's outbound listeners, routes, clusters and endpoints; a gateway's everything.
type classResources struct {
	listeners, routes, clusters, endpoints []proto.Message
	eds                                    []edsKey // what each endpoint assignment was built from
}

// edsKey is what an outbound cluster's assignment is built from, so an endpoint change
// rebuilds only the assignments of the hosts it touched (cache.go).
type edsKey struct {
	host   string
	port   uint32
	subset string
}

func (g *generator) classResources() *classResources {
	r := &classResources{}
	r.clusters, r.endpoints, r.eds = g.outboundClusters()
	if g.p.Type == model.ProxyRouter {
		r.listeners, r.routes = g.gatewayResources() // gateway.go
		r.clusters = append(r.clusters, g.inboundClusters()...)
	} else {
		r.listeners = g.outboundListeners()
		r.routes = g.routes()
	}
	g.addTracing(r.listeners) // tracing.go
	g.addAccessLogs(r.listeners)
	g.addMetricOverrides(r.listeners)
	return r
}

// ownResources are a sidecar's own: the listeners bound to its address and its inbound
// clusters. A gateway has none (they are in its class of one).
type ownResources struct {
	listeners, clusters []proto.Message
}

func (g *generator) ownResources() *ownResources {
	if g.p.Type == model.ProxyRouter {
		return &ownResources{}
	}
	own := &ownResources{
		listeners: []proto.Message{g.virtualOutbound(), g.virtualInbound()},
		clusters:  g.inboundClusters(),
	}
	g.addTracing(own.listeners) // tracing.go
	g.addAccessLogs(own.listeners)
	g.addMetricOverrides(own.listeners)
	return own
}

type named interface{ GetName() string }
type clusterNamed interface{ GetClusterName() string }

func resourceName(m proto.Message) string {
	switch x := m.(type) {
	case named:
		return x.GetName()
	case clusterNamed:
		return x.GetClusterName()
	}
	return ""
}

func sortByName(ms []proto.Message) {
	slices.SortStableFunc(ms, func(a, b proto.Message) int { return cmp.Compare(resourceName(a), resourceName(b)) })
}

// ClusterName is Istio's BuildSubsetKey: "direction|port|subset|host".
func ClusterName(direction string, port uint32, subset, host string) string {
	return direction + "|" + itoa(port) + "|" + subset + "|" + host
}

// InboundClusterName is "inbound|<port>||".
func InboundClusterName(port uint32) string { return ClusterName("inbound", port, "", "") }

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic("translate: marshal " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error())
	}
	return a
}

func adsSource() *corepb.ConfigSource {
	return &corepb.ConfigSource{
		ConfigSourceSpecifier: &corepb.ConfigSource_Ads{Ads: &corepb.AggregatedConfigSource{}},
		ResourceApiVersion:    corepb.ApiVersion_V3,
	}
}

func socketAddress(addr string, port uint32) *corepb.Address {
	return &corepb.Address{Address: &corepb.Address_SocketAddress{SocketAddress: &corepb.SocketAddress{
		Address: addr, PortSpecifier: &corepb.SocketAddress_PortValue{PortValue: port},
	}}}
}

const maxUint32 = math.MaxUint32

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
