package translate

import (
	"slices"
	"strings"
	"sync"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Cache generates proxies' resources as Parts that proxies share, and keeps them from one
// mesh to the next while they stay valid. It sits between the model and the ADS server:
//
//	store → model.Build → Cache.Update(mesh, model.Diff) → ads (per proxy) → Cache.Parts(proxy)
//
// A proxy's resources come in two groups: its class's (model.Mesh.ProxyClass: a sidecar's
// outbound listeners, routes, clusters and endpoints, the same for every sidecar of a
// namespace with the same Sidecar scope and matching selectors; a gateway's everything)
// and its own (the listeners bound to its address and its inbound clusters). Each is
// built once per class or proxy and handed out as the same Group pointers until something
// it depends on changes, so the ADS server marshals and diffs it once:
//
//   - a configuration change (model.Change.Config) drops everything; each class and proxy
//     is built again on first use;
//   - an endpoint change rebuilds, in each class, only the endpoint assignments of the
//     hosts it touched (an EDS-only push: listeners, routes and clusters keep their
//     Groups), and the own resources of workloads that changed.
//
// Outbound clusters and assignments are also shared across classes within one mesh
// (meshCache). Shared messages must not be modified by anyone. The zero Cache is ready;
// it is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	mesh    *model.Mesh
	shared  *meshCache
	classes map[string]*classEntry
	own     map[string]*ownEntry // by proxy ID
	grpc    grpcMemo             // grpc.go: proxyless gRPC clients' Groups
	nds     ndsMemo              // nds.go: name tables for DNS capture
}

// Group is an immutable list of resources of one type, sorted by name, that proxies share
// (an ads.Part).
type Group struct{ msgs []proto.Message }

// Messages returns the group's resources. They must not be modified.
func (g *Group) Messages() []proto.Message { return g.msgs }

func newGroup(msgs []proto.Message) *Group {
	sortByName(msgs)
	return &Group{msgs: msgs}
}

// Parts is one proxy's resources as Groups: its class's first, then its own.
type Parts struct {
	Listeners, Routes, Clusters, Endpoints []*Group
}

// Resources flattens p into one sorted list per type.
func (p *Parts) Resources() *Resources {
	flat := func(gs []*Group) []proto.Message {
		var out []proto.Message
		for _, g := range gs {
			out = append(out, g.msgs...)
		}
		sortByName(out)
		return out
	}
	return &Resources{Listeners: flat(p.Listeners), Routes: flat(p.Routes), Clusters: flat(p.Clusters), Endpoints: flat(p.Endpoints)}
}

type classEntry struct {
	ready                                  chan struct{} // closed once built
	rep                                    *model.Proxy  // the proxy it was built for
	listeners, routes, clusters, endpoints *Group
	eds                                    []edsKey // parallel to endpoints.msgs
}

type ownEntry struct {
	ready               chan struct{}
	workload            string // model.Mesh.WorkloadIdentity it was built for
	listeners, clusters *Group
}

// Update makes m the mesh Parts generates from; ch is model.Diff(previous mesh, m).
func (c *Cache) Update(m *model.Mesh, ch model.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.mesh
	c.mesh, c.shared = m, newMeshCache(m, c.shared)
	if prev == nil || ch.Config || c.classes == nil {
		c.classes, c.own = map[string]*classEntry{}, map[string]*ownEntry{}
		c.grpc.reset()
		return
	}
	for key, e := range c.classes {
		select {
		case <-e.ready:
		default:
			delete(c.classes, key) // being built from the previous mesh: built again on next use
			continue
		}
		if len(ch.EndpointHosts) == 0 {
			continue
		}
		if ne := c.rebuildEndpoints(e, m, ch.EndpointHosts); ne != nil {
			c.classes[key] = ne
		} else {
			delete(c.classes, key)
		}
	}
	for id, o := range c.own {
		select {
		case <-o.ready:
		default:
			delete(c.own, id)
		}
	}
	// Own resources of changed workloads are rebuilt on next use (ownFor compares the
	// workload identity).
}

// rebuildEndpoints is e with the assignments of hosts rebuilt from m (nil when one cannot
// be: the class is then built again).
func (c *Cache) rebuildEndpoints(e *classEntry, m *model.Mesh, hosts map[string]bool) *classEntry {
	var msgs []proto.Message
	g := newGenerator(m, e.rep, c.shared)
	for i, k := range e.eds {
		if !hosts[k.host] {
			continue
		}
		if msgs == nil {
			msgs = slices.Clone(e.endpoints.msgs)
		}
		svc := m.Service(k.host)
		if svc == nil {
			return nil
		}
		port, ok := svc.Port(k.port)
		if !ok {
			return nil
		}
		_, cla := g.outboundCluster(svc, port, m.DestinationRule(e.rep.Namespace, e.rep.Labels, k.host), k.subset)
		if cla == nil {
			return nil
		}
		msgs[i] = cla
	}
	if msgs == nil {
		return e
	}
	ne := *e
	ne.endpoints = &Group{msgs: msgs} // same names in the same order: still sorted
	return &ne
}

// Parts returns proxy p's resources under the current mesh (Update first). p's Labels and
// ServiceAccount come from its WorkloadEntry (model.Mesh.ResolveProxy; without one, its
// Labels are kept).
func (c *Cache) Parts(p *model.Proxy) *Parts {
	c.mu.Lock()
	m := c.mesh
	c.mu.Unlock()
	if m == nil {
		return &Parts{}
	}
	p = m.ResolveProxy(p)
	cl := c.classFor(m, p)
	if p.GRPC {
		return c.grpcParts(m, p, cl) // grpc.go: proxyless gRPC
	}
	own := c.ownFor(m, p)
	parts := &Parts{
		Listeners: []*Group{cl.listeners},
		Routes:    []*Group{cl.routes},
		Clusters:  []*Group{cl.clusters},
		Endpoints: []*Group{cl.endpoints},
	}
	if own.listeners != nil {
		parts.Listeners = append(parts.Listeners, own.listeners)
	}
	if own.clusters != nil {
		parts.Clusters = append(parts.Clusters, own.clusters)
	}
	return parts
}

// Generate is Parts(p) for mesh m, flattened: Generate(m, p) sharing what the cache has
// (tests, and callers that want plain lists).
func (c *Cache) Generate(m *model.Mesh, p *model.Proxy) *Resources {
	c.mu.Lock()
	current := c.mesh == m
	c.mu.Unlock()
	if !current {
		c.Update(m, model.Full)
	}
	return c.Parts(p).Resources()
}

func (c *Cache) classFor(m *model.Mesh, p *model.Proxy) *classEntry {
	key := m.ProxyClass(p)
	c.mu.Lock()
	if c.mesh != m { // Update ran meanwhile: build from the mesh we started with, unshared
		c.mu.Unlock()
		return buildClass(m, p, newMeshCache(m, nil))
	}
	e := c.classes[key]
	if e == nil {
		e = &classEntry{ready: make(chan struct{})}
		c.classes[key] = e
		shared := c.shared
		c.mu.Unlock()
		b := buildClass(m, p, shared)
		e.rep, e.listeners, e.routes, e.clusters, e.endpoints, e.eds = b.rep, b.listeners, b.routes, b.clusters, b.endpoints, b.eds
		close(e.ready)
		return e
	}
	c.mu.Unlock()
	<-e.ready
	return e
}

func buildClass(m *model.Mesh, p *model.Proxy, shared *meshCache) *classEntry {
	r := newGenerator(m, p, shared).classResources()
	// Sort endpoints and their keys together.
	idx := make([]int, len(r.endpoints))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		return strings.Compare(resourceName(r.endpoints[a]), resourceName(r.endpoints[b]))
	})
	eps, eds := make([]proto.Message, len(idx)), make([]edsKey, len(idx))
	for i, j := range idx {
		eps[i], eds[i] = r.endpoints[j], r.eds[j]
	}
	done := make(chan struct{})
	close(done)
	return &classEntry{
		ready: done, rep: p,
		listeners: newGroup(r.listeners), routes: newGroup(r.routes), clusters: newGroup(r.clusters),
		endpoints: &Group{msgs: eps}, eds: eds,
	}
}

func (c *Cache) ownFor(m *model.Mesh, p *model.Proxy) *ownEntry {
	id := m.WorkloadIdentity(p)
	if p.TProxy { // the same sidecar restarted in another capture mode gets new listeners
		id += "|TPROXY"
	}
	c.mu.Lock()
	if c.mesh != m {
		c.mu.Unlock()
		return buildOwn(m, p, id)
	}
	e := c.own[p.ID]
	if e == nil || (isReady(e) && e.workload != id) {
		e = &ownEntry{ready: make(chan struct{}), workload: id}
		c.own[p.ID] = e
		c.mu.Unlock()
		b := buildOwn(m, p, id)
		e.listeners, e.clusters = b.listeners, b.clusters
		close(e.ready)
		return e
	}
	c.mu.Unlock()
	<-e.ready
	return e
}

func buildOwn(m *model.Mesh, p *model.Proxy, id string) *ownEntry {
	r := newGenerator(m, p, nil).ownResources()
	e := &ownEntry{workload: id}
	if len(r.listeners) > 0 {
		e.listeners = newGroup(r.listeners)
	}
	if len(r.clusters) > 0 {
		e.clusters = newGroup(r.clusters)
	}
	return e
}

func isReady(e *ownEntry) bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// Forget drops the own resources kept for a proxy that left.
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.own, id)
}

// newMeshCache is m's cache, carrying over the clusters of prev (the cache of the mesh
// before, nil for none) that m may reuse.
func newMeshCache(m *model.Mesh, prev *meshCache) *meshCache {
	mc := &meshCache{mesh: m, clusters: map[clusterKey]clusterEntry{}, byContent: map[contentKey]clusterEntry{},
		meta: map[*model.Endpoint]*corepb.Metadata{}}
	if prev == nil || !model.SameSettings(prev.mesh, m) {
		return mc
	}
	prev.mu.Lock()
	defer prev.mu.Unlock()
	mc.carry = make(map[contentKey]clusterEntry, len(prev.carry)+len(prev.byContent))
	for _, from := range []map[contentKey]clusterEntry{prev.carry, prev.byContent} {
		for k, e := range from {
			if m.Service(k.host) != nil {
				mc.carry[k] = e
			}
		}
	}
	return mc
}

// meshCache is the shared resources of one mesh.
type meshCache struct {
	mesh *model.Mesh
	// carry is the clusters of earlier meshes (the newest of each): one whose service,
	// DestinationRule and endpoints did not change is reused (the same messages, which the
	// ADS server does not marshal again), so a configuration change rebuilds only the
	// clusters it touches. Immutable once the cache is made.
	carry     map[contentKey]clusterEntry
	mu        sync.Mutex
	clusters  map[clusterKey]clusterEntry
	byContent map[contentKey]clusterEntry
	meta      map[*model.Endpoint]*corepb.Metadata
}

// contentKey names a cluster by what it is built from, across meshes (with the checks in
// carried).
type contentKey struct {
	host   string
	port   uint32
	subset string
	dr     string // model.DestinationRule.Identity
}

func contentOf(k clusterKey) contentKey {
	return contentKey{host: k.svc.Host, port: k.port.Number, subset: k.subset, dr: k.dr.Identity()}
}

// carried returns k's cluster and assignment from an earlier mesh when nothing they are
// built from changed.
func (mc *meshCache) carried(k clusterKey) (clusterEntry, bool) {
	e, ok := mc.carry[contentOf(k)]
	if !ok || !model.SameService(e.svc, k.svc) || !model.SameEndpointList(e.eps, mc.mesh.Endpoints(k.svc.Host, k.port.Number)) {
		return clusterEntry{}, false
	}
	return e, true
}

// clusterKey is everything outboundCluster reads besides the mesh.
type clusterKey struct {
	svc    *model.Service
	port   model.Port
	dr     *model.DestinationRule
	subset string
}

type clusterEntry struct {
	c   *clusterpb.Cluster
	cla *endpointpb.ClusterLoadAssignment
	svc *model.Service    // what they were built from, to tell whether a later mesh may reuse them
	eps []*model.Endpoint // the service port's endpoints
}

// outboundCluster returns the shared cluster and assignment for the key, building them
// with build the first time.
func (mc *meshCache) outboundCluster(k clusterKey, build func() (*clusterpb.Cluster, *endpointpb.ClusterLoadAssignment)) (*clusterpb.Cluster, *endpointpb.ClusterLoadAssignment) {
	mc.mu.Lock()
	e, ok := mc.clusters[k]
	mc.mu.Unlock()
	if ok {
		return e.c, e.cla
	}
	e, ok = mc.carried(k)
	if !ok {
		e.c, e.cla = build()
		e.svc, e.eps = k.svc, mc.mesh.Endpoints(k.svc.Host, k.port.Number)
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if x, ok := mc.clusters[k]; ok { // built meanwhile by another caller: share that one
		return x.c, x.cla
	}
	mc.clusters[k] = e
	mc.byContent[contentOf(k)] = e
	return e.c, e.cla
}

// endpointMetadata returns the shared metadata of e, building it the first time.
func (mc *meshCache) endpointMetadata(e *model.Endpoint) *corepb.Metadata {
	mc.mu.Lock()
	md, ok := mc.meta[e]
	mc.mu.Unlock()
	if ok {
		return md
	}
	md = endpointMetadata(e)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if x, ok := mc.meta[e]; ok {
		return x
	}
	mc.meta[e] = md
	return md
}
