package translate

import (
	"sync"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// Cache shares, between the proxies of one mesh, the resources that do not depend on the
// individual proxy. An outbound cluster and its ClusterLoadAssignment are a function of
// the mesh, the service, the port, the DestinationRule that applies and the subset only
// (outboundCluster): proxies that see the same service with the same DestinationRule get
// the same two messages, built once, and so does each endpoint's metadata. With N sidecars
// a push builds each service's clusters once instead of N times, and the ADS server, seeing
// the same pointers, hashes each of them once (ads/intern.go).
//
// The cache holds one mesh at a time: Generate with a newer mesh starts afresh, so nothing
// outlives the mesh it was built from. Shared messages must not be modified by anyone.
// The zero Cache is ready; it is safe for concurrent use.
type Cache struct {
	mu  sync.Mutex
	cur *meshCache
}

// Generate is Generate(m, p) sharing the proxy-independent resources with earlier calls
// for the same mesh. It returns resources equal to Generate's.
func (c *Cache) Generate(m *model.Mesh, p *model.Proxy) *Resources {
	return generate(m, p, c.forMesh(m))
}

func (c *Cache) forMesh(m *model.Mesh) *meshCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.mesh != m {
		c.cur = &meshCache{
			mesh:     m,
			clusters: map[clusterKey]clusterEntry{},
			meta:     map[*model.Endpoint]*corepb.Metadata{},
		}
	}
	return c.cur
}

// meshCache is the shared resources of one mesh.
type meshCache struct {
	mesh     *model.Mesh
	mu       sync.Mutex
	clusters map[clusterKey]clusterEntry
	meta     map[*model.Endpoint]*corepb.Metadata
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
	c, cla := build()
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if e, ok := mc.clusters[k]; ok { // built meanwhile by another caller: share that one
		return e.c, e.cla
	}
	mc.clusters[k] = clusterEntry{c: c, cla: cla}
	return c, cla
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
