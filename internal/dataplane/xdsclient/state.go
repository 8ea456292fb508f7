package xdsclient

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Type URLs of the four resource types.
const (
	ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// kind describes one resource type: how to decode it and how it is subscribed.
type kind struct {
	url, short, noun string
	wildcard         bool // LDS and CDS: full state, empty resource_names
	// decode unmarshals one resource and returns its name and decoded value.
	decode func(*anypb.Any) (name string, value any, err error)
}

// kinds in the order Envoy sends its first requests: CDS, EDS, LDS, RDS.
var kinds = []kind{
	{url: ClusterType, short: contract.CDS, noun: "cluster", wildcard: true, decode: decodeAny(func(m *clusterpb.Cluster) (string, any, error) {
		v, err := DecodeCluster(m)
		return m.GetName(), v, err
	})},
	{url: EndpointType, short: contract.EDS, noun: "endpoints", decode: decodeAny(func(m *endpointpb.ClusterLoadAssignment) (string, any, error) {
		v, err := DecodeEndpoints(m)
		return m.GetClusterName(), v, err
	})},
	{url: ListenerType, short: contract.LDS, noun: "listener", wildcard: true, decode: decodeAny(func(m *listenerpb.Listener) (string, any, error) {
		v, err := DecodeListener(m)
		return m.GetName(), v, err
	})},
	{url: RouteType, short: contract.RDS, noun: "route", decode: decodeAny(func(m *routepb.RouteConfiguration) (string, any, error) {
		v, err := DecodeRouteConfig(m)
		return m.GetName(), v, err
	})},
}

// decodeAny adapts a typed decoder to Any input. The generic parameter is a pointer to a
// proto struct; new(T) must not be used with pointer types, so P is built from T.
func decodeAny[T any, P interface {
	*T
	proto.Message
}](f func(P) (string, any, error)) func(*anypb.Any) (string, any, error) {
	return func(a *anypb.Any) (string, any, error) {
		m := P(new(T))
		if err := proto.Unmarshal(a.GetValue(), m); err != nil {
			return "", nil, fmt.Errorf("cannot unmarshal: %w", err)
		}
		return f(m)
	}
}

// entry is one accepted resource.
type entry struct {
	raw        *anypb.Any // as received, for config_dump
	value      any        // *resource.Listener, ...
	version    string     // version_info of the response that last changed it
	resVersion string     // delta: the resource's own version (initial_resource_versions)
	updated    time.Time  // when it last changed
}

// typeState is the per-type sync state. entries and status are guarded by Client.mu for
// readers; everything else belongs to the owner goroutine.
type typeState struct {
	kind    kind
	cache   *DecodeCache // Options.DecodeCache (nil: decode everything)
	entries map[string]*entry
	status  TypeStatus

	names     []string        // RDS/EDS: subscribed names, sorted (set with setNames)
	nameSet   map[string]bool // names as a set
	nonce     string          // last nonce received on the current stream
	requested bool            // a request was sent on the current stream

	// Repeated-NACK spacing: the key of the last NACKed response and the current delay.
	nackKey   [32]byte
	nackDelay time.Duration
}

// add decodes resource i of a response (a, named want when the response names it, with
// the server's version resVersion) into cd, unless ts does not subscribe to it (ignored,
// as Envoy does). seen catches a name twice in one response.
func (cd *candidate) add(ts *typeState, i int, a *anypb.Any, want, resVersion string, seen map[string]bool, now time.Time) error {
	if a.GetTypeUrl() != ts.kind.url {
		return fmt.Errorf("%s resources[%d]: type %q in a %s response", ts.kind.noun, i, a.GetTypeUrl(), ts.kind.short)
	}
	a, name, v, err := ts.cache.decode(ts.kind, a)
	switch {
	case err != nil && name == "":
		return fmt.Errorf("%s resources[%d]: %w", ts.kind.noun, i, err)
	case err != nil:
		return fmt.Errorf("%s %q: %w", ts.kind.noun, name, err)
	case want != "" && want != name:
		return fmt.Errorf("%s resources[%d]: named %q, but the resource is %q", ts.kind.noun, i, want, name)
	case seen[name]:
		return fmt.Errorf("%s %q: duplicate name in the response", ts.kind.noun, name)
	}
	seen[name] = true
	if !ts.subscribed(name) {
		return nil
	}
	e := &entry{raw: a, value: v, version: cd.version, resVersion: resVersion, updated: now}
	if old := ts.entries[name]; old != nil && bytes.Equal(old.raw.GetValue(), a.GetValue()) {
		e.version, e.updated = old.version, old.updated
	}
	cd.set(name, e)
	return nil
}

// setNames replaces the subscribed names (sorted).
func (ts *typeState) setNames(names []string) {
	ts.names = names
	ts.nameSet = make(map[string]bool, len(names))
	for _, n := range names {
		ts.nameSet[n] = true
	}
}

// subscribed reports whether name is subscribed (every name of a wildcard type is).
func (ts *typeState) subscribed(name string) bool { return ts.kind.wildcard || ts.nameSet[name] }

// candidate is a type's state as it would be after accepting a response.
type candidate struct {
	// entries is the type's entries after the response; nil for an overlay: the type's
	// current entries with added set and removed gone (routes and endpoints, which a
	// response changes a few at a time, are not copied for every response).
	entries map[string]*entry
	version string
	accept  bool // the response being accepted (not a pruned follower)
	// patch says the candidate is the current entries with added and removed applied,
	// so the snapshot's map can be patched instead of rebuilt.
	patch   bool
	added   map[string]*entry
	removed []string
}

// overlay is a candidate that patches ts's current entries.
func overlay(version string) *candidate {
	return &candidate{version: version, patch: true, added: map[string]*entry{}}
}

// set records a new or changed entry.
func (cd *candidate) set(name string, e *entry) {
	if cd.entries != nil {
		cd.entries[name] = e
	}
	if cd.added != nil {
		cd.added[name] = e
	}
}

// remove records a removed entry of ts.
func (cd *candidate) remove(ts *typeState, name string) {
	if cd.entries != nil {
		if _, ok := cd.entries[name]; ok {
			delete(cd.entries, name)
			cd.removed = append(cd.removed, name)
		}
		return
	}
	if _, ok := ts.entries[name]; ok || cd.added[name] != nil {
		delete(cd.added, name)
		cd.removed = append(cd.removed, name)
	}
}

// commit makes the candidate ts's entries. Callers hold the client's mu.
func (cd *candidate) commit(ts *typeState) {
	if cd.entries != nil {
		ts.entries = cd.entries
		return
	}
	for _, n := range cd.removed {
		delete(ts.entries, n)
	}
	for n, e := range cd.added {
		ts.entries[n] = e
	}
}

// responseKey identifies a response's content (version and resource bytes).
func responseKey(r *discoverypb.DiscoveryResponse) [32]byte {
	h := sha256.New()
	h.Write([]byte(r.GetVersionInfo()))
	for _, a := range r.GetResources() {
		h.Write([]byte{0})
		h.Write([]byte(a.GetTypeUrl()))
		h.Write([]byte{0})
		h.Write(a.GetValue())
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// decodeResponse decodes every resource of r into a candidate for ts. For RDS and EDS the
// response's resources are merged into the subscribed ones it does not mention.
func decodeResponse(ts *typeState, r *discoverypb.DiscoveryResponse, now time.Time) (*candidate, error) {
	cd := &candidate{entries: map[string]*entry{}, version: r.GetVersionInfo()}
	if !ts.kind.wildcard {
		// The entries are the subscribed names' already (followers are pruned when their
		// names change): the response patches them.
		cd = overlay(r.GetVersionInfo())
	}
	seen := map[string]bool{}
	for i, a := range r.GetResources() {
		if err := cd.add(ts, i, a, "", "", seen, now); err != nil {
			return nil, err
		}
	}
	return cd, nil
}

// routeNames lists the RDS names the listeners reference, sorted.
func routeNames(entries map[string]*entry) []string {
	set := map[string]bool{}
	for _, e := range entries {
		l, _ := e.value.(*resource.Listener)
		if l == nil {
			continue
		}
		chains := l.FilterChains
		if l.DefaultChain != nil {
			chains = append(slices.Clip(chains), *l.DefaultChain)
		}
		for _, fc := range chains {
			if fc.HTTP != nil && fc.HTTP.RDSName != "" {
				set[fc.HTTP.RDSName] = true
			}
		}
	}
	return sortedKeys(set)
}

// edsNames lists the service names of the EDS clusters, sorted.
func edsNames(entries map[string]*entry) []string {
	set := map[string]bool{}
	for _, e := range entries {
		if c, _ := e.value.(*resource.Cluster); c != nil && c.Type == resource.EDS {
			set[c.ServiceName] = true
		}
	}
	return sortedKeys(set)
}

// prune keeps only the entries named in names.
func prune(entries map[string]*entry, names []string) map[string]*entry {
	out := make(map[string]*entry, len(names))
	for _, n := range names {
		if e, ok := entries[n]; ok {
			out[n] = e
		}
	}
	return out
}
