// Package ads is the control plane's xDS server: the last step of the control-plane flow,
// serving what translate produced to every sidecar, gateway or proxyless gRPC client:
//
//	source → config → store → model → translate → ads ══ xDS v3 (ADS: SotW and delta) ══▶ clients
//
// Each connection has its own goroutine, its own subscriptions and its own record of what it
// was sent. Push only marks connections dirty; each connection then generates its resources
// from the newest configuration (a slow one skips to the newest state instead of queueing
// pushes, so its memory stays bounded and nobody waits for it), compares them with what it
// sent, and sends what changed, in Envoy's order: clusters, their endpoints, and only once
// the client has subscribed to the endpoints of new clusters, listeners and routes; clusters
// that went away are removed after the routes that used them (make before break).
//
// Resources are shared: a Generator returns Parts (groups of resources that many proxies
// get, table.go), which are marshalled and hashed once and diffed by identity, so an
// endpoint change costs the endpoint assignments it touched, not every proxy's whole
// configuration. Requests may name any subset of resources, mix a wildcard with names, and
// name resources that do not exist yet (they are sent when they appear).
package ads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clustergrpc "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointgrpc "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenergrpc "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routegrpc "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

// Generator produces a proxy's resources.
type Generator interface {
	// Generate returns every resource node should have under the newest configuration. An
	// error keeps the node's last good resources; ErrNotReady says there is no
	// configuration yet (a proxy that connects first is answered by the first push).
	Generate(node *corepb.Node) (Resources, error)
}

// ErrNotReady is what a Generator returns before the first configuration is built: a
// normal start when proxies connect before the control plane has read its sources, not an
// error to log.
var ErrNotReady = errors.New("no configuration built yet")

// Type URLs, in the order a push sends them (Envoy's: a cluster before its endpoints,
// both before the listeners and routes that use them), then Istio's name table for the
// agent's DNS proxy (one unnamed resource, sent to proxies that subscribe to it).
var xdsTypes = []string{
	contract.ClusterTypeURL, contract.EndpointTypeURL, contract.ListenerTypeURL, contract.RouteTypeURL, nds.TypeURL,
}

// fullState reports whether a state-of-the-world response of typeURL must list every
// subscribed resource (listeners and clusters), or only those that changed.
func fullState(typeURL string) bool {
	return typeURL == contract.ListenerTypeURL || typeURL == contract.ClusterTypeURL
}

// PushRequest describes one configuration change.
type PushRequest struct {
	// Version is the configuration version (the store's); it prefixes every version_info
	// sent for content that changed in this push.
	Version string
	// Start is when the first change folded into this push happened (the debounce's first
	// event); convergence time and proxy lag are measured from it. Zero means now.
	Start time.Time
	// Full is false for a push of endpoints only (metrics and logs).
	Full bool
}

// Server is the xDS server. Create it with New; it is safe for concurrent use.
type Server struct {
	gen Generator
	log *slog.Logger

	// Metrics, when set before Serve, records Istio's pilot_* metrics (metrics.go).
	Metrics *Metrics
	// Throttle bounds how many connections generate at once (Istio's PILOT_PUSH_THROTTLE,
	// 100); sending is not bounded, a slow client only blocks its own connection.
	Throttle int
	// WarmTimeout bounds how long a push waits for a client to subscribe to the endpoints of
	// the clusters it just received before it sends listeners and routes (default 5 s).
	WarmTimeout time.Duration
	// RemovalGrace is how long clusters and endpoints a routing change stopped using are
	// kept before they are removed (default 1 s).
	RemovalGrace time.Duration
	// Authorize, when set before Serve, admits the proxy of a new stream (the node of its
	// first request) or refuses it with the gRPC status it returns; ctx is the stream's,
	// with its peer (the TLS port's client certificate).
	Authorize func(ctx context.Context, node *corepb.Node) error

	// Clocks and retention are fields so tests can shorten them.
	now         func() time.Time
	forgetAfter time.Duration // how long a disconnected node's status is kept
	stopGrace   time.Duration // how long Serve waits for a graceful stop

	table *table
	sem   chan struct{} // Throttle slots, made by Serve

	extra []extraService // more gRPC services on the xDS port (services.go); set before Serve

	pushMu  sync.Mutex   // serializes Push
	version string       // the last Push's version (guarded by mu)
	diffs   sync.Map     // [2]*set → *pairDiff, for the current push generation
	enc     encodeCache  // responses encoded once for every stream that is sent them (encoded.go)
	checks  sync.Map     // consistency results per set combination (consistent.go)
	names   nameInterner // watches' subscribed names, one copy per distinct set (names.go)

	mu      sync.Mutex // guards nodes, conns, version and every conn's shared fields
	nodes   map[string]*nodeState
	conns   map[int64]*conn
	nextID  int64
	started bool
}

// New returns a Server that builds resources with gen and logs to log.
func New(gen Generator, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		gen:          gen,
		log:          log,
		Throttle:     100,
		WarmTimeout:  5 * time.Second,
		RemovalGrace: time.Second,
		now:          time.Now,
		forgetAfter:  10 * time.Minute,
		stopGrace:    5 * time.Second,
		table:        newTable(),
		nodes:        map[string]*nodeState{},
		conns:        map[int64]*conn{},
	}
}

// Push tells every connection that the configuration changed. It returns at once: each
// connection regenerates from the newest configuration on its own goroutine and sends
// what changed for it; connections still busy with an earlier push fold this one in.
func (s *Server) Push(r PushRequest) {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	if r.Start.IsZero() {
		r.Start = s.now()
	}
	s.table.advance()
	s.diffs.Clear()
	s.checks.Clear()
	s.enc.clear() // encodings serve one push generation: memory stays bounded by it

	s.mu.Lock()
	s.version = r.Version
	s.pruneLocked()
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.markPendingLocked(r)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.wake()
	}
	s.log.Info("pushing configuration", "version", r.Version, "proxies", len(conns), "full", r.Full)
}

// currentVersion is the last Push's version, "0" before the first.
func (s *Server) currentVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.version == "" {
		return "0"
	}
	return s.version
}

// Serve runs the gRPC xDS server on lis until ctx ends, then stops gracefully (open
// streams end with ctx, so the stop is quick). It registers ADS (state of the world and
// delta) and the per-type LDS, RDS, CDS and EDS services. Clients may ping every 5 s or
// slower, even without a stream. It may be called once per listener: opts are that
// listener's gRPC options (the TLS port's credentials).
func (s *Server) Serve(ctx context.Context, lis net.Listener, opts ...grpc.ServerOption) error {
	s.mu.Lock()
	if !s.started {
		s.started = true
		s.sem = make(chan struct{}, max(1, s.Throttle))
	}
	s.mu.Unlock()
	gs := grpc.NewServer(append([]grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    30 * time.Second,
			Timeout: 10 * time.Second,
		}),
		grpc.MaxRecvMsgSize(16 << 20),
	}, opts...)...)
	svc := &services{s: s, ctx: ctx}
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, svc)
	listenergrpc.RegisterListenerDiscoveryServiceServer(gs, &listenerService{svc: svc})
	routegrpc.RegisterRouteDiscoveryServiceServer(gs, &routeService{svc: svc})
	clustergrpc.RegisterClusterDiscoveryServiceServer(gs, &clusterService{svc: svc})
	endpointgrpc.RegisterEndpointDiscoveryServiceServer(gs, &endpointService{svc: svc})
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

// services implements ADS (both protocols) for the gRPC server.
type services struct {
	discoverygrpc.UnimplementedAggregatedDiscoveryServiceServer
	s   *Server
	ctx context.Context // Serve's: streams end with it
}

func (v *services) StreamAggregatedResources(st discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return v.s.serveStream(v.ctx, sotwStream{st, &v.s.enc}, "")
}

func (v *services) DeltaAggregatedResources(st discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return v.s.serveStream(v.ctx, deltaStream{st, &v.s.enc}, "")
}

// The per-type services serve one type per stream, in either protocol.
type (
	listenerService struct {
		listenergrpc.UnimplementedListenerDiscoveryServiceServer
		svc *services
	}
	routeService struct {
		routegrpc.UnimplementedRouteDiscoveryServiceServer
		svc *services
	}
	clusterService struct {
		clustergrpc.UnimplementedClusterDiscoveryServiceServer
		svc *services
	}
	endpointService struct {
		endpointgrpc.UnimplementedEndpointDiscoveryServiceServer
		svc *services
	}
)

func (v *listenerService) StreamListeners(st listenergrpc.ListenerDiscoveryService_StreamListenersServer) error {
	return v.svc.s.serveStream(v.svc.ctx, sotwStream{st, &v.svc.s.enc}, contract.ListenerTypeURL)
}

func (v *listenerService) DeltaListeners(st listenergrpc.ListenerDiscoveryService_DeltaListenersServer) error {
	return v.svc.s.serveStream(v.svc.ctx, deltaStream{st, &v.svc.s.enc}, contract.ListenerTypeURL)
}

func (v *routeService) StreamRoutes(st routegrpc.RouteDiscoveryService_StreamRoutesServer) error {
	return v.svc.s.serveStream(v.svc.ctx, sotwStream{st, &v.svc.s.enc}, contract.RouteTypeURL)
}

func (v *routeService) DeltaRoutes(st routegrpc.RouteDiscoveryService_DeltaRoutesServer) error {
	return v.svc.s.serveStream(v.svc.ctx, deltaStream{st, &v.svc.s.enc}, contract.RouteTypeURL)
}

func (v *clusterService) StreamClusters(st clustergrpc.ClusterDiscoveryService_StreamClustersServer) error {
	return v.svc.s.serveStream(v.svc.ctx, sotwStream{st, &v.svc.s.enc}, contract.ClusterTypeURL)
}

func (v *clusterService) DeltaClusters(st clustergrpc.ClusterDiscoveryService_DeltaClustersServer) error {
	return v.svc.s.serveStream(v.svc.ctx, deltaStream{st, &v.svc.s.enc}, contract.ClusterTypeURL)
}

func (v *endpointService) StreamEndpoints(st endpointgrpc.EndpointDiscoveryService_StreamEndpointsServer) error {
	return v.svc.s.serveStream(v.svc.ctx, sotwStream{st, &v.svc.s.enc}, contract.EndpointTypeURL)
}

func (v *endpointService) DeltaEndpoints(st endpointgrpc.EndpointDiscoveryService_DeltaEndpointsServer) error {
	return v.svc.s.serveStream(v.svc.ctx, deltaStream{st, &v.svc.s.enc}, contract.EndpointTypeURL)
}
