package ads

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

// Part is a group of resources of one type that a Generator hands to one or many proxies.
// The server marshals and hashes a Part once, however many proxies get it, and compares
// parts by identity first: a Generator that returns the same Part (the same pointer) for
// unchanged content costs nothing on a push. A Part must be a pointer and must not change
// once returned.
type Part interface {
	Messages() []proto.Message
}

// Resources is what a Generator returns for one proxy: per type URL, the parts that make up
// its resources of that type. A type missing from the map has no resources. Names are
// unique across the parts of one type.
type Resources map[string][]Part

// NewPart wraps messages in a Part of their own (a new identity on every call).
func NewPart(msgs ...proto.Message) Part { return &part{msgs: msgs} }

type part struct{ msgs []proto.Message }

func (p *part) Messages() []proto.Message { return p.msgs }

// resource is one marshalled resource, shared by every proxy that has it.
type resource struct {
	name    string
	sum     [32]byte // SHA-256 of the deterministic encoding
	version string   // hex of the first 8 bytes of sum: the delta protocol's version
	any     *anypb.Any
	refs    []string // names it depends on: a cluster's EDS service name, a listener's RDS names
}

// set is one Part, marshalled: its resources by name.
type set struct {
	byName map[string]*resource
	names  []string // sorted
	sum    [32]byte // over the sorted names and resource sums
}

// view is a proxy's resources of one type: the sets of its parts.
type view []*set

func (v view) get(name string) *resource {
	for _, s := range v {
		if r := s.byName[name]; r != nil {
			return r
		}
	}
	return nil
}

func (v view) len() int {
	n := 0
	for _, s := range v {
		n += len(s.names)
	}
	return n
}

// each calls f with every resource, set by set, each set in name order.
func (v view) each(f func(*resource)) {
	for _, s := range v {
		for _, n := range s.names {
			f(s.byName[n])
		}
	}
}

// hash identifies the view's content (for version_info).
func (v view) hash() [32]byte {
	if len(v) == 1 {
		return v[0].sum
	}
	h := sha256.New()
	for _, s := range v {
		h.Write(s.sum[:])
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// samePointers reports whether a and b are made of the very same sets.
func samePointers(a, b view) bool {
	return slices.Equal(a, b)
}

// table turns Parts into sets, once per Part, and keeps one copy of each distinct resource
// for every proxy (by content hash). Entries are kept while pushes use them: each lookup
// marks its entry with the current generation, and prune drops what the last two
// generations did not use. Safe for concurrent use.
type table struct {
	mu    sync.Mutex
	gen   uint64
	parts map[Part]*partEntry
	msgs  map[proto.Message]*msgEntry
	sums  map[internKey]*msgEntry
}

type partEntry struct {
	done chan struct{} // closed once set and err are filled
	set  *set
	err  error
	used uint64
}

type msgEntry struct {
	r    *resource
	used uint64
}

type internKey struct {
	typeURL string
	sum     [32]byte
}

func newTable() *table {
	return &table{parts: map[Part]*partEntry{}, msgs: map[proto.Message]*msgEntry{}, sums: map[internKey]*msgEntry{}}
}

// advance starts a new generation and drops the entries the previous two did not use.
func (t *table) advance() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	if t.gen < 2 {
		return
	}
	keep := t.gen - 2
	for k, e := range t.parts {
		if e.used < keep {
			delete(t.parts, k)
		}
	}
	for k, e := range t.msgs {
		if e.used < keep {
			delete(t.msgs, k)
		}
	}
	for k, e := range t.sums {
		if e.used < keep {
			delete(t.sums, k)
		}
	}
}

// size is the number of distinct resources kept (tests).
func (t *table) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sums)
}

// setOf returns p's set, building it the first time (concurrent callers wait for it).
func (t *table) setOf(typeURL string, p Part) (*set, error) {
	t.mu.Lock()
	e := t.parts[p]
	if e != nil {
		e.used = t.gen
		t.mu.Unlock()
		<-e.done
		return e.set, e.err
	}
	e = &partEntry{done: make(chan struct{}), used: t.gen}
	t.parts[p] = e
	t.mu.Unlock()
	e.set, e.err = t.build(typeURL, p.Messages())
	close(e.done)
	return e.set, e.err
}

// viewOf returns the view of parts.
func (t *table) viewOf(typeURL string, parts []Part) (view, error) {
	v := make(view, 0, len(parts))
	for _, p := range parts {
		s, err := t.setOf(typeURL, p)
		if err != nil {
			return nil, err
		}
		v = append(v, s)
	}
	return v, nil
}

func (t *table) build(typeURL string, msgs []proto.Message) (*set, error) {
	s := &set{byName: make(map[string]*resource, len(msgs)), names: make([]string, 0, len(msgs))}
	for _, m := range msgs {
		r, err := t.resourceOf(typeURL, m)
		if err != nil {
			return nil, err
		}
		if s.byName[r.name] != nil {
			return nil, fmt.Errorf("%s %q: two resources with one name", shortType(typeURL), r.name)
		}
		s.byName[r.name] = r
		s.names = append(s.names, r.name)
	}
	slices.Sort(s.names)
	h := sha256.New()
	for _, n := range s.names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(s.byName[n].sum[:])
	}
	copy(s.sum[:], h.Sum(nil))
	return s, nil
}

// resourceOf returns m's resource: remembered by pointer, else marshalled and interned by
// content, so equal resources from different proxies' parts are one copy.
func (t *table) resourceOf(typeURL string, m proto.Message) (*resource, error) {
	t.mu.Lock()
	if e := t.msgs[m]; e != nil {
		e.used = t.gen
		t.mu.Unlock()
		return e.r, nil
	}
	t.mu.Unlock()

	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %s %q: %w", shortType(typeURL), resourceName(m), err)
	}
	sum := sha256.Sum256(b)
	k := internKey{typeURL: typeURL, sum: sum}

	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.sums[k]
	if e == nil {
		name := resourceName(m)
		if name == "" && typeURL != nds.TypeURL { // Istio's name table is unnamed
			return nil, fmt.Errorf("a %s resource without a name", shortType(typeURL))
		}
		r := &resource{name: name, sum: sum, version: hex.EncodeToString(sum[:8]),
			any: &anypb.Any{TypeUrl: typeURL, Value: b}, refs: references(m)}
		e = &msgEntry{r: r}
		t.sums[k] = e
	}
	e.used = t.gen
	t.msgs[m] = &msgEntry{r: e.r, used: t.gen}
	return e.r, nil
}

type named interface{ GetName() string }

// resourceName is the xDS name of a resource: a ClusterLoadAssignment's cluster name,
// everyone else's name.
func resourceName(m proto.Message) string {
	switch x := m.(type) {
	case *endpointpb.ClusterLoadAssignment:
		return x.GetClusterName()
	case named:
		return x.GetName()
	}
	return ""
}

// references lists what a resource needs of the next type down: an EDS cluster its
// assignment's name, a listener the route configurations its HTTP connection managers
// take from RDS. Listeners' filters are decoded only for that.
func references(m proto.Message) []string {
	switch x := m.(type) {
	case *clusterpb.Cluster:
		if x.GetType() != clusterpb.Cluster_EDS {
			return nil
		}
		if n := x.GetEdsClusterConfig().GetServiceName(); n != "" {
			return []string{n}
		}
		return []string{x.GetName()}
	case *listenerpb.Listener:
		var out []string
		add := func(a *anypb.Any) {
			if a == nil || !strings.HasSuffix(a.GetTypeUrl(), ".HttpConnectionManager") {
				return
			}
			hcm := &hcmpb.HttpConnectionManager{}
			if a.UnmarshalTo(hcm) != nil {
				return
			}
			if n := hcm.GetRds().GetRouteConfigName(); n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		add(x.GetApiListener().GetApiListener())
		chains := slices.Clone(x.GetFilterChains())
		if x.GetDefaultFilterChain() != nil {
			chains = append(chains, x.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				add(f.GetTypedConfig())
			}
		}
		return out
	}
	return nil
}
