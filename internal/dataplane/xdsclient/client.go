package xdsclient

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Applier receives the whole accepted configuration after every accepted change. If Apply
// returns an error, the update that caused it is NACKed with that error (e.g. a listener
// port that cannot be bound). A snapshot's maps are shared with the snapshots after it
// (a type that did not change keeps its map): the Applier must not modify them.
type Applier interface {
	Apply(*resource.Snapshot) error
}

// Options configure a Client.
type Options struct {
	Server   string            // host:port of the ADS server (plaintext gRPC unless DialOptions say otherwise)
	NodeID   string            // e.g. "sidecar~127.0.10.2~reviews-v1.default~default.svc.cluster.local"
	Cluster  string            // node.cluster ("Kubernetes")
	Metadata map[string]string // node.metadata (string values)
	Version  string            // node.user_agent_build_version (buildversion.go), the build (/server_info's version); default "dev"
	Applier  Applier
	Logger   *slog.Logger
	// BackoffBase and BackoffMax bound the jittered exponential reconnect delay (defaults
	// 100 ms and 15 s). Repeated identical NACKs are also spaced by them.
	BackoffBase, BackoffMax time.Duration
	// Protocol is the xDS variant: ProtocolAuto (the default: delta when the server offers
	// it, else state of the world), ProtocolDelta or ProtocolSotW.
	Protocol string
	// DecodeCache, when set, shares decoded resources with the other clients of this
	// process that use it (see DecodeCache; nil for a sidecar).
	DecodeCache *DecodeCache
	// DialOptions are added to the connection's (a later WithTransportCredentials wins
	// over plaintext: the control plane's TLS port).
	DialOptions []grpc.DialOption
	// NameTable, when set, subscribes to Istio's name table (NDS) and receives every
	// accepted one (decode_nds.go): the agent's DNS proxy.
	NameTable func(nds.Table)
}

// Protocols.
const (
	ProtocolAuto  = ""
	ProtocolDelta = "delta"
	ProtocolSotW  = "sotw"
)

// Status is the client's view of its xDS stream.
type Status struct {
	Connected bool
	Protocol  string                // ProtocolDelta or ProtocolSotW: the one in use (or last used)
	Types     map[string]TypeStatus // "LDS", "RDS", "CDS", "EDS"
}

// TypeStatus is the sync state of one resource type.
type TypeStatus struct {
	Received    bool   // at least one response accepted
	Version     string // last accepted version_info
	NackReason  string // last NACK's reason ("" if the last response was accepted)
	NackVersion string
	UpdatedAt   time.Time
}

// Client is an ADS (state of the world) client. Run owns the stream; Status and ConfigDump
// may be called from any goroutine.
type Client struct {
	o    Options
	log  *slog.Logger
	node *corepb.Node

	// mu guards connected and every typeState's entries and status. Only the goroutine
	// running Run writes them; it holds mu while it does.
	mu        sync.Mutex
	connected bool
	protocol  string                // in use
	types     map[string]*typeState // by type URL
	order     []*typeState          // CDS, EDS, LDS, RDS: the order requests are sent in
	last      *resource.Snapshot    // the last snapshot applied (its maps are reused)

	conn atomic.Pointer[grpc.ClientConn] // set while Run runs; Report uses it (events.go)
	// running is closed once Run has its connection: a Report made before that (an app
	// probe fails while the sidecar starts) waits for it rather than being lost.
	running     chan struct{}
	runningOnce sync.Once
}

// New returns a client; call Run to connect.
func New(o Options) *Client {
	if o.BackoffBase <= 0 {
		o.BackoffBase = 100 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 15 * time.Second
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	md := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, v := range o.Metadata {
		md.Fields[k] = structpb.NewStringValue(v)
	}
	c := &Client{
		o:   o,
		log: o.Logger,
		node: &corepb.Node{
			Id:            o.NodeID,
			Cluster:       o.Cluster,
			Metadata:      md,
			UserAgentName: "lucid",
		},
		types:   map[string]*typeState{},
		running: make(chan struct{}),
	}
	setUserAgentVersion(c.node, cmp.Or(o.Version, "dev")) // buildversion.go
	ks := kinds
	if o.NameTable != nil {
		ks = append(slices.Clip(ks), ndsKind) // decode_nds.go
	}
	for _, k := range ks {
		ts := &typeState{kind: k, entries: map[string]*entry{}, cache: o.DecodeCache}
		c.types[k.url] = ts
		c.order = append(c.order, ts)
	}
	return c
}

// Status returns a copy of the current sync state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Connected: c.connected, Protocol: c.protocol, Types: map[string]TypeStatus{}}
	for _, ts := range c.order {
		s.Types[ts.kind.short] = ts.status
	}
	return s
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	c.connected = v
	c.mu.Unlock()
}

// Run connects to the server and keeps the ADS stream up until ctx ends, reconnecting with
// jittered exponential backoff. The last accepted configuration keeps serving while the
// stream is down. It returns nil when ctx ends.
func (c *Client) Run(ctx context.Context) error {
	conn, err := grpc.NewClient(c.o.Server, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second}),
		// Windows large enough for a whole configuration in flight (Envoy's are 256 MiB):
		// with gRPC's 64 KiB start, a large route configuration waits for window updates.
		grpc.WithInitialWindowSize(4 << 20),
		grpc.WithInitialConnWindowSize(16 << 20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}, c.o.DialOptions...)...)
	if err != nil {
		return fmt.Errorf("xdsclient: dial %s: %w", c.o.Server, err)
	}
	defer conn.Close()
	c.conn.Store(conn)
	defer c.conn.Store(nil)
	c.runningOnce.Do(func() { close(c.running) })
	attempt := 0
	proto := c.o.Protocol
	for {
		var s interface {
			run(context.Context) error
			responded() bool
		}
		if proto == ProtocolSotW {
			s = newSession(c, conn)
		} else {
			s = newDeltaSession(c, conn)
		}
		c.mu.Lock()
		c.protocol = cmp.Or(proto, ProtocolDelta)
		c.mu.Unlock()
		err := s.run(ctx)
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if proto == ProtocolAuto && status.Code(err) == codes.Unimplemented {
			c.log.Info("xds server does not offer the delta protocol; using state of the world", "server", c.o.Server)
			proto = ProtocolSotW
			continue
		}
		if s.responded() {
			attempt = 0
		}
		d := c.backoff(attempt)
		attempt++
		c.log.Warn("xds stream closed, reconnecting", "server", c.o.Server, "error", err, "backoff", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff is the jittered exponential delay before reconnect attempt n (0-based): a
// random duration in [d/2, d] where d = min(base·2ⁿ, max).
func (c *Client) backoff(n int) time.Duration {
	d := c.o.BackoffBase
	for i := 0; i < n && d < c.o.BackoffMax; i++ {
		d *= 2
	}
	if d > c.o.BackoffMax {
		d = c.o.BackoffMax
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// buildSnapshot renders the accepted state, with the candidates replacing some types.
// Types without a candidate keep the maps of the last applied snapshot, and a candidate
// that knows what it changed patches a copy of them, so an update of a few endpoint
// assignments costs a map copy, not a rebuild of every resource. Callers hold c.mu or are
// the owner goroutine.
func (c *Client) buildSnapshot(cands map[*typeState]*candidate) *resource.Snapshot {
	snap := &resource.Snapshot{Versions: map[string]string{}}
	last := c.last
	for _, ts := range c.order {
		entries, version, received := ts.entries, ts.status.Version, ts.status.Received
		cd, changed := cands[ts]
		if changed {
			version, received = cd.version, received || cd.accept
			if cd.entries != nil {
				entries = cd.entries
			}
		}
		if received {
			snap.Versions[ts.kind.url] = version
		}
		switch ts.kind.url {
		case ListenerType:
			snap.Listeners = typed(entries, cd, changed, lastOf(last, func(s *resource.Snapshot) map[string]*resource.Listener { return s.Listeners }))
		case RouteType:
			snap.Routes = typed(entries, cd, changed, lastOf(last, func(s *resource.Snapshot) map[string]*resource.RouteConfig { return s.Routes }))
		case ClusterType:
			snap.Clusters = typed(entries, cd, changed, lastOf(last, func(s *resource.Snapshot) map[string]*resource.Cluster { return s.Clusters }))
		case EndpointType:
			snap.Endpoints = typed(entries, cd, changed, lastOf(last, func(s *resource.Snapshot) map[string]*resource.Endpoints { return s.Endpoints }))
		}
	}
	return snap
}

func lastOf[T any](last *resource.Snapshot, get func(*resource.Snapshot) map[string]T) map[string]T {
	if last == nil {
		return nil
	}
	return get(last)
}

// typed is one type's map of a snapshot: the last one when the type did not change, a
// patched copy of it when the candidate lists its changes, else built from entries.
func typed[T any](entries map[string]*entry, cd *candidate, changed bool, last map[string]T) map[string]T {
	switch {
	case !changed && last != nil:
		return last
	case changed && cd.patch && last != nil:
		m := maps.Clone(last)
		for _, n := range cd.removed {
			delete(m, n)
		}
		for n, e := range cd.added {
			if v, ok := e.value.(T); ok {
				m[n] = v
			}
		}
		return m
	}
	m := make(map[string]T, len(entries))
	for name, e := range entries {
		if v, ok := e.value.(T); ok {
			m[name] = v
		}
	}
	if changed && cd.entries == nil { // an overlay without a last snapshot: apply it
		for _, n := range cd.removed {
			delete(m, n)
		}
		for n, e := range cd.added {
			if v, ok := e.value.(T); ok {
				m[n] = v
			}
		}
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// request builds a DiscoveryRequest for ts with its accepted version and current nonce
// (the session adds the node to the stream's first request).
func (c *Client) request(ts *typeState) *discoverypb.DiscoveryRequest {
	r := &discoverypb.DiscoveryRequest{
		VersionInfo:   ts.status.Version,
		TypeUrl:       ts.kind.url,
		ResponseNonce: ts.nonce,
	}
	if !ts.kind.wildcard {
		r.ResourceNames = append([]string(nil), ts.names...)
	}
	return r
}
