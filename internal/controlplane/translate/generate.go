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
func Generate(m *model.Mesh, p *model.Proxy) *Resources { return generate(m, p, nil) }

// generate is Generate sharing proxy-independent resources through cache (cache.go) when
// it is not nil.
func generate(m *model.Mesh, p *model.Proxy, cache *meshCache) *Resources {
	if p.Labels == nil {
		p = m.ResolveProxy(p)
	}
	g := &generator{m: m, p: p, services: m.VisibleServices(p.Namespace), cache: cache}
	r := &Resources{}
	r.Clusters, r.Endpoints = g.clusters()
	if p.Type == model.ProxyRouter {
		r.Listeners, r.Routes = g.gatewayResources() // gateway.go
	} else {
		r.Listeners = g.listeners()
		r.Routes = g.routes()
	}
	sortByName(r.Listeners)
	sortByName(r.Routes)
	sortByName(r.Clusters)
	sortByName(r.Endpoints)
	return r
}

type generator struct {
	m        *model.Mesh
	p        *model.Proxy
	services []*model.Service
	cache    *meshCache // nil: build everything for this proxy alone
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
