// Package ads is the control plane's xDS server: the last step of the control-plane flow,
// serving what translate produced to every sidecar (or any Envoy) over gRPC:
//
//	source → config → store → model → translate → ads ══ xDS v3 (ADS, SotW) ══▶ xdsclient
//
// It wraps go-control-plane's snapshot cache (not in its "ADS mode", which leaves a request
// unanswered until it names every resource of its type: clients such as gRPC's subscribe to
// the few they need). Push regenerates one snapshot per
// known proxy through a Generator, checks it for consistency and publishes it only when its
// content changed. Server callbacks record, per proxy and per type, what was sent, acked and
// nacked, for `lucid proxy-status` and the /debug endpoints.
package ads

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clustergrpc "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointgrpc "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenergrpc "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routegrpc "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	xdsserverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// Generator produces the full resource set for one node.
type Generator interface {
	// Generate returns every resource the node should have, keyed by type URL
	// (resourcev3.ListenerType, RouteType, ClusterType, EndpointType). A missing type
	// means "none of that type". An error keeps the node's last good snapshot.
	Generate(node *corepb.Node) (map[string][]types.Resource, error)
}

// xdsTypes are the types every snapshot carries, in the order Envoy wants them applied.
var xdsTypes = []string{
	resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType,
}

// Server is the ADS server. Create it with New; it is safe for concurrent use.
type Server struct {
	gen   Generator
	log   *slog.Logger
	cache cachev3.SnapshotCache

	// Clocks and retention are fields so tests can shorten them.
	now         func() time.Time
	forgetAfter time.Duration // how long a disconnected node's status is kept
	stopGrace   time.Duration // how long Serve waits for a graceful stop

	// genMu serializes generation and publication, so snapshots reach the cache in
	// order. Lock order: genMu before mu.
	genMu     sync.Mutex
	version   string                // the last Push version (guarded by genMu)
	published map[string]*published // node ID → what the cache holds (guarded by genMu)

	extra []extraService // more gRPC services on the xDS port (services.go); set before Serve

	shared interner // one copy of each distinct resource for all nodes (intern.go; guarded by genMu)

	mu      sync.Mutex // guards the sync state below
	nodes   map[string]*nodeState
	streams map[int64]string // stream ID → node ID, once the stream's first request named it
}

// published remembers, for one node, each type's content hash and the version it was
// published under, so unchanged types keep their version and get no push.
type published struct {
	hash    map[string]string
	version map[string]string
}

// New returns a Server that builds snapshots with gen and logs to log.
func New(gen Generator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		gen:         gen,
		log:         log,
		cache:       cachev3.NewSnapshotCache(false, cachev3.IDHash{}, cacheLogger{log}),
		now:         time.Now,
		forgetAfter: 10 * time.Minute,
		stopGrace:   5 * time.Second,
		published:   map[string]*published{},
		nodes:       map[string]*nodeState{},
		streams:     map[int64]string{},
	}
}

// Push regenerates the snapshot of every known node (connected, or disconnected less than
// ten minutes ago) for configuration version. A type whose content did not change keeps
// its previous version, so a node with no change gets no push. Call it after every build.
func (s *Server) Push(version string) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	s.version = version
	s.pruneLocked()

	s.mu.Lock()
	nodes := make([]*corepb.Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n.node)
	}
	s.mu.Unlock()
	slices.SortFunc(nodes, func(a, b *corepb.Node) int { return strings.Compare(a.GetId(), b.GetId()) })

	changed := 0
	s.shared.begin()
	for _, n := range nodes {
		if s.publishLocked(n) {
			changed++
		}
	}
	s.shared.end()
	s.log.Info("pushed configuration", "version", version, "proxies", len(nodes), "changed", changed)
}

// publishLocked generates node's snapshot and sets it in the cache when it differs from
// the published one and is consistent. It reports whether a new snapshot was set.
// Callers hold genMu.
func (s *Server) publishLocked(node *corepb.Node) bool {
	id := node.GetId()
	res, err := s.gen.Generate(node)
	if err != nil {
		s.log.Error("generating configuration failed; proxy keeps its last good configuration",
			"proxy", id, "version", s.version, "error", err)
		return false
	}

	version := s.version
	if version == "" {
		version = "0"
	}
	prev := s.published[id]
	next := &published{hash: map[string]string{}, version: map[string]string{}}
	snap := &cachev3.Snapshot{}
	same := prev != nil
	for typeURL := range res {
		if cachev3.GetResponseType(typeURL) == types.UnknownType {
			s.log.Error("generator returned an unknown resource type; ignored", "proxy", id, "type", typeURL)
		}
	}
	for i := range types.UnknownType {
		typeURL, err := cachev3.GetResponseTypeURL(i)
		if err != nil {
			continue
		}
		items, ok := res[typeURL]
		if !ok && !slices.Contains(xdsTypes, typeURL) {
			continue // a type this server does not serve unless asked to
		}
		h, err := hashResources(items, s.shared.share(typeURL))
		if err != nil {
			s.log.Error("hashing resources failed; proxy keeps its last good configuration",
				"proxy", id, "type", shortType(typeURL), "error", err)
			return false
		}
		v := version + "-" + h[:8]
		if prev != nil && prev.hash[typeURL] == h {
			v = prev.version[typeURL]
		} else {
			same = false
		}
		next.hash[typeURL], next.version[typeURL] = h, v
		snap.Resources[i] = cachev3.NewResources(v, items)
	}
	if same && len(prev.hash) == len(next.hash) {
		return false
	}
	if err := snap.Consistent(); err != nil {
		s.log.Error("inconsistent snapshot not published; proxy keeps its last good configuration",
			"proxy", id, "version", version, "reason", inconsistency(snap, err))
		return false
	}
	if err := s.cache.SetSnapshot(context.Background(), id, snap); err != nil {
		s.log.Error("setting snapshot failed", "proxy", id, "version", version, "error", err)
		return false
	}
	s.published[id] = next
	s.log.Debug("snapshot published", "proxy", id, "versions", next.version)
	return true
}

// inconsistency explains why snap failed Consistent: which referenced route and endpoint
// names are missing, and which are present without a reference.
func inconsistency(snap *cachev3.Snapshot, err error) string {
	refs := cachev3.GetAllResourceReferences(snap.Resources)
	var parts []string
	for _, c := range []struct {
		typeURL, what, by string
	}{
		{resourcev3.RouteType, "route configuration", "listener"},
		{resourcev3.EndpointType, "cluster load assignment", "cluster"},
	} {
		have := snap.GetResources(c.typeURL)
		for _, name := range slices.Sorted(maps.Keys(refs[c.typeURL])) {
			if _, ok := have[name]; !ok {
				parts = append(parts, fmt.Sprintf("a %s references %s %q, which does not exist", c.by, c.what, name))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(have)) {
			if !refs[c.typeURL][name] {
				parts = append(parts, fmt.Sprintf("%s %q is referenced by no %s", c.what, name, c.by))
			}
		}
	}
	if len(parts) == 0 {
		return err.Error()
	}
	return strings.Join(parts, "; ")
}

// hashResources hashes resources independently of their order. It replaces each item by
// the interner's copy of it and reuses hashes it remembers (intern.go); the zero sharer
// only hashes.
func hashResources(items []types.Resource, sh sharer) (string, error) {
	det := proto.MarshalOptions{Deterministic: true}
	sums := make([]string, 0, len(items))
	for i, r := range items {
		sum, err := sh.sum(det, r)
		if err != nil {
			return "", err
		}
		sums = append(sums, string(sum[:]))
		if sh.share != nil {
			items[i] = sh.share(sum, r)
		}
	}
	slices.Sort(sums)
	h := sha256.New()
	for _, s := range sums {
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Serve runs the gRPC xDS server on lis until ctx ends, then stops gracefully (open
// streams end with ctx, so the stop is quick). It registers ADS and the per-type LDS, RDS,
// CDS and EDS services. Clients may ping every 5 s or slower, even without a stream.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	xds := xdsserverv3.NewServer(ctx, s.cache, s.callbacks(), serverv3.WithOrderedADS(),
		serverv3.WithLogger(cacheLogger{s.log}))
	gs := grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    30 * time.Second,
			Timeout: 10 * time.Second,
		}),
	)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, xds)
	listenergrpc.RegisterListenerDiscoveryServiceServer(gs, xds)
	routegrpc.RegisterRouteDiscoveryServiceServer(gs, xds)
	clustergrpc.RegisterClusterDiscoveryServiceServer(gs, xds)
	endpointgrpc.RegisterEndpointDiscoveryServiceServer(gs, xds)
	for _, e := range s.extra {
		gs.RegisterService(e.desc, e.impl)
	}

	s.log.Info("xDS server listening", "address", lis.Addr().String())
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()

	select {
	case err := <-served:
		return fmt.Errorf("ads: serve %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	grace := time.NewTimer(s.stopGrace)
	defer grace.Stop()
	select {
	case <-stopped:
	case <-grace.C:
		s.log.Warn("graceful stop timed out; closing remaining streams")
		gs.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("ads: serve %s: %w", lis.Addr(), err)
	}
	s.log.Info("xDS server stopped")
	return nil
}

// cacheLogger adapts slog to go-control-plane's logger. Its chatter goes to Debug, its
// warnings and errors keep their level.
type cacheLogger struct{ log *slog.Logger }

func (l cacheLogger) Debugf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l cacheLogger) Infof(format string, args ...any) { l.Debugf(format, args...) }

func (l cacheLogger) Warnf(format string, args ...any) { l.log.Warn(fmt.Sprintf(format, args...)) }

func (l cacheLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
