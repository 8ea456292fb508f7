package agent

import (
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Istio's bootstrap resources, which the agent adds to every configuration it applies:
// the health listener on 15021, whose only route sends /healthz/ready through the proxy
// to the status server (cluster "agent"), so the sidecar's readiness probe also proves
// that the proxy's listeners work.
const (
	healthListenerName = "0.0.0.0_15021"
	agentClusterName   = "agent"
)

// staticResources are the listeners and clusters of the bootstrap.
type staticResources struct {
	listeners map[string]*resource.Listener
	clusters  map[string]*resource.Cluster
}

func newStatic(ip netip.Addr, statusPort, healthPort uint16) staticResources {
	route := resource.Route{
		Match:  resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/healthz/ready", CaseSensitive: true},
		Action: &resource.RouteAction{Cluster: agentClusterName},
	}
	health := &resource.Listener{
		Name:       healthListenerName,
		Address:    netip.AddrPortFrom(netip.IPv4Unspecified(), healthPort),
		BindToPort: true,
		FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{
			StatPrefix: "agent",
			Routes: &resource.RouteConfig{Name: "local_route", VirtualHosts: []resource.VirtualHost{{
				Name: "backend", Domains: []string{"*"}, Routes: []resource.Route{route},
			}}},
		}}},
	}
	agent := &resource.Cluster{
		Name: agentClusterName, Type: resource.Static, ConnectTimeout: 250 * time.Millisecond,
		LoadAssignment: &resource.Endpoints{ClusterName: agentClusterName, Endpoints: []resource.Endpoint{{
			Address: netip.AddrPortFrom(ip, statusPort), Port: uint32(statusPort), Weight: 1,
		}}},
	}
	return staticResources{
		listeners: map[string]*resource.Listener{health.Name: health},
		clusters:  map[string]*resource.Cluster{agent.Name: agent},
	}
}

// applier sits between the xDS client and the proxy: it adds the static resources to
// every snapshot (they win over dynamic resources of the same name, which xDS cannot
// replace, as Envoy's bootstrap resources cannot be), and while the sidecar drains it
// keeps inbound listeners from being bound again.
type applier struct {
	proxy interface {
		Apply(*resource.Snapshot) error
	}
	static staticResources
	router bool // a router drains (and stops binding) every dynamic listener, not only inbound ones

	mu       sync.Mutex // serialises Apply with the start of the drain
	draining bool
	dynamic  atomic.Bool // a snapshot from xDS has been applied
}

// Apply is xdsclient.Applier.
func (a *applier) Apply(s *resource.Snapshot) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.proxy.Apply(a.merge(s)); err != nil {
		return err
	}
	a.dynamic.Store(true)
	return nil
}

// applyStatic applies the static resources alone (before any xDS configuration).
func (a *applier) applyStatic() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proxy.Apply(a.merge(&resource.Snapshot{}))
}

// startDrain marks inbound listeners not to bind from now on. Call before the proxy's
// DrainInbound: an Apply that holds the lock finishes first, and later ones skip them.
func (a *applier) startDrain() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.draining = true
}

// merge returns a copy of s with the static resources added (s is not modified).
func (a *applier) merge(s *resource.Snapshot) *resource.Snapshot {
	out := *s
	out.Listeners = make(map[string]*resource.Listener, len(s.Listeners)+len(a.static.listeners))
	for name, l := range s.Listeners {
		if a.draining && (l.Direction == resource.Inbound || a.router) && l.BindToPort {
			// Keep the listener (requests on draining connections still find their
			// chain) but do not bind it again.
			c := *l
			c.BindToPort = false
			l = &c
		}
		out.Listeners[name] = l
	}
	maps.Copy(out.Listeners, a.static.listeners)
	out.Clusters = make(map[string]*resource.Cluster, len(s.Clusters)+len(a.static.clusters))
	maps.Copy(out.Clusters, s.Clusters)
	maps.Copy(out.Clusters, a.static.clusters)
	return &out
}
