// Package store holds the newest configuration from every source and hands it, debounced,
// to the builder. It sits between the sources and the translation:
//
//	source/{file,kube} → config → store → model → translate → ads
//
// Sources call Update whenever their view changes; Update never blocks. Run owns the only
// goroutine that builds. It debounces as istiod does: a build starts once no update has
// arrived for DebounceAfter (PILOT_DEBOUNCE_AFTER, 100 ms), or DebounceMax (PILOT_DEBOUNCE_MAX,
// 10 s) after the first pending update under a continuous stream of them. Updates that
// change only endpoints skip the quiet period unless EDSDebounce is set (Istio's
// PILOT_ENABLE_EDS_DEBOUNCE): they are built at once when the last build started at least
// EDSInterval ago, else when it has (under continuous endpoint churn, one build per
// EDSInterval carries every change since the last).
// One Snapshot is built at a time; updates that arrive while a build runs are merged and
// built next, so a slow build always gets the newest state, never a backlog.
package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// DefaultDebounce is the quiet period New uses when given a debounce <= 0 (Istio's
// PILOT_DEBOUNCE_AFTER).
const DefaultDebounce = 100 * time.Millisecond

// DefaultMaxWait bounds how long a pending update can wait for a quiet period: under a
// continuous stream of updates a build still starts this long after the first of them
// (Istio's PILOT_DEBOUNCE_MAX).
const DefaultMaxWait = 10 * time.Second

// Options tune a Store beyond New's defaults.
type Options struct {
	DebounceAfter time.Duration // quiet period; <= 0: DefaultDebounce
	DebounceMax   time.Duration // longest wait for a quiet period; <= 0: DefaultMaxWait
	// EDSDebounce debounces endpoint-only updates like any other (Istio's default);
	// false builds them at once, at most one build per EDSInterval.
	EDSDebounce bool
	// EDSInterval is the least time between the starts of two builds that endpoint-only
	// updates trigger without EDSDebounce (0: none).
	EDSInterval time.Duration
	// EndpointsOnly tells whether an object's change (old → cur; either may be nil for an
	// object that appeared or went away) changes only endpoints. nil: every change is a
	// configuration change.
	EndpointsOnly func(old, cur *config.Object) bool
	// OnDebounce, if set, is called with each build's debounce time: from the first
	// pending update to the build (Istio's pilot_debounce_time).
	OnDebounce func(time.Duration)
	// Expect names the sources whose first Update comes before the first build: a
	// control plane that publishes before a slow source has loaded would hand every
	// proxy an empty configuration for a moment.
	Expect []string
}

// Snapshot is the merged configuration of every source at one moment. It is immutable:
// consumers may keep it and share it between goroutines.
type Snapshot struct {
	// Version is a short hash of every object's identity and generation plus the mesh
	// config; equal versions mean equal configuration.
	Version string
	// Objects from all sources, sorted by Kind, then Namespace, then Name. When two
	// sources define the same object, the source whose name sorts first wins.
	Objects []*config.Object
	// Diagnostics from all sources, in source name order, each source's in its own order.
	Diagnostics []config.Diagnostic
	// Mesh is the mesh config set with SetMesh (nil until then). Never mutated.
	Mesh *meshv1alpha1.MeshConfig
	// Start is when the first update built into this Snapshot arrived.
	Start time.Time
	// EndpointsOnly is true when every update since the previous build changed endpoints
	// only (per Options.EndpointsOnly).
	EndpointsOnly bool
}

type sourceState struct {
	objs  []*config.Object
	diags []config.Diagnostic
	byKey map[string]*config.Object // with EndpointsOnly set: objs by Key
}

// Store keeps the latest state per source and publishes merged Snapshots through Run.
// All methods are safe for concurrent use.
type Store struct {
	log      *slog.Logger
	debounce time.Duration
	maxWait  time.Duration
	opts     Options

	// notify holds at most one token: "something changed since Run last looked".
	notify chan struct{}

	mu           sync.Mutex // guards the fields below
	sources      map[string]sourceState
	mesh         *meshv1alpha1.MeshConfig
	dirty        bool      // an update is waiting to be built
	config       bool      // a pending update changes more than endpoints
	firstPending time.Time // when the oldest unbuilt update arrived
	lastUpdate   time.Time // when the newest unbuilt update arrived
	lastBuild    time.Time // when the last build started
}

// New returns an empty Store. debounce <= 0 means DefaultDebounce.
func New(log *slog.Logger, debounce time.Duration) *Store {
	return NewWithOptions(log, Options{DebounceAfter: debounce, EDSDebounce: true})
}

// NewWithOptions returns an empty Store tuned by o.
func NewWithOptions(log *slog.Logger, o Options) *Store {
	if o.DebounceAfter <= 0 {
		o.DebounceAfter = DefaultDebounce
	}
	if o.DebounceMax <= 0 {
		o.DebounceMax = DefaultMaxWait
	}
	return &Store{
		log:      log,
		debounce: o.DebounceAfter,
		maxWait:  o.DebounceMax,
		opts:     o,
		notify:   make(chan struct{}, 1),
		sources:  map[string]sourceState{},
	}
}

// Update replaces everything known from one source ("file", later "kube") with objs and
// diags. The store keeps the slices; callers must not modify them afterwards. Update never
// blocks on the builder.
func (s *Store) Update(source string, objs []*config.Object, diags []config.Diagnostic) {
	st := sourceState{objs: objs, diags: diags}
	s.mu.Lock()
	prev, known := s.sources[source]
	cfg := true
	if s.opts.EndpointsOnly != nil {
		st.byKey = make(map[string]*config.Object, len(objs))
		for _, o := range objs {
			if o != nil {
				st.byKey[o.Key()] = o
			}
		}
		cfg = !known || !s.endpointsOnly(prev.byKey, st.byKey) || !slices.Equal(prev.diags, diags)
	}
	s.sources[source] = st
	s.markDirtyLocked(cfg)
	s.mu.Unlock()
	s.wake()
}

// endpointsOnly reports whether every object that differs between a and b changes only
// endpoints.
func (s *Store) endpointsOnly(a, b map[string]*config.Object) bool {
	for k, n := range b {
		o := a[k]
		if o == n || (o != nil && o.Generation != "" && o.Generation == n.Generation) {
			continue
		}
		if !s.opts.EndpointsOnly(o, n) {
			return false
		}
	}
	for k, o := range a {
		if _, ok := b[k]; !ok && !s.opts.EndpointsOnly(o, nil) {
			return false
		}
	}
	return true
}

// SetMesh replaces the mesh config (part of every Snapshot and of its Version). m must
// not be modified afterwards.
func (s *Store) SetMesh(m *meshv1alpha1.MeshConfig) {
	s.mu.Lock()
	s.mesh = m
	s.markDirtyLocked(true)
	s.mu.Unlock()
	s.wake()
}

func (s *Store) markDirtyLocked(cfg bool) {
	now := time.Now()
	if !s.dirty {
		s.dirty = true
		s.firstPending = now
	}
	s.config = s.config || cfg
	if cfg || s.opts.EDSDebounce {
		s.lastUpdate = now
	}
}

func (s *Store) wake() {
	select {
	case s.notify <- struct{}{}:
	default: // a wake-up is already pending; Run will see the newest state
	}
}

// Run publishes Snapshots until ctx ends. After an update it waits until no update has
// arrived for the debounce period, but never longer than DefaultMaxWait since the first
// pending update, then calls build with the newest Snapshot. build runs on Run's
// goroutine, so only one build is ever in flight; updates that arrive meanwhile are
// merged and built next. A Snapshot equal to the last one built (same Version and
// Diagnostics) is skipped. Run returns once ctx ends and any running build has returned.
func (s *Store) Run(ctx context.Context, build func(*Snapshot)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var last *Snapshot
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.notify:
		}
		if !s.waitQuiet(ctx, timer) {
			return
		}
		snap, ok := s.take()
		if !ok {
			continue
		}
		if last != nil && last.Version == snap.Version && slices.Equal(last.Diagnostics, snap.Diagnostics) {
			s.log.Debug("configuration unchanged; build skipped", "version", snap.Version)
			continue
		}
		last = snap
		start := time.Now()
		build(snap)
		s.log.Debug("configuration built", "version", snap.Version,
			"objects", len(snap.Objects), "diagnostics", len(snap.Diagnostics),
			"took", time.Since(start))
	}
}

// waitQuiet blocks until the pending update has been quiet for the debounce period or
// has waited maxWait in total. It reports false when ctx ended first.
func (s *Store) waitQuiet(ctx context.Context, timer *time.Timer) bool {
	for {
		s.mu.Lock()
		if !s.dirty {
			s.mu.Unlock()
			return true // nothing pending; take reports that
		}
		deadline := s.lastUpdate.Add(s.debounce)
		if !s.config && !s.opts.EDSDebounce {
			deadline = s.lastBuild.Add(s.opts.EDSInterval) // endpoints only: now, or one interval after the last build
		}
		if limit := s.firstPending.Add(s.maxWait); limit.Before(deadline) {
			deadline = limit
		}
		s.mu.Unlock()

		wait := time.Until(deadline)
		if wait <= 0 {
			return true
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		case <-s.notify:
			// A newer update moved the deadline; recompute it.
			timer.Stop()
		}
	}
}

// take merges the sources into a Snapshot and clears the pending state.
func (s *Store) take() (*Snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil, false
	}
	for _, name := range s.opts.Expect {
		if _, ok := s.sources[name]; !ok {
			return nil, false // still pending: the source's first Update wakes Run again
		}
	}
	snap := merge(s.sources, s.mesh)
	snap.Start, snap.EndpointsOnly = s.firstPending, !s.config
	s.lastBuild = time.Now()
	if s.opts.OnDebounce != nil {
		s.opts.OnDebounce(time.Since(s.firstPending))
	}
	s.dirty, s.config = false, false
	return snap, true
}

// merge builds the Snapshot of sources (read-only) and mesh.
func merge(sources map[string]sourceState, mesh *meshv1alpha1.MeshConfig) *Snapshot {
	snap := &Snapshot{Mesh: mesh}
	owner := map[string]string{} // object key → source that defined it
	for _, name := range slices.Sorted(maps.Keys(sources)) {
		src := sources[name]
		snap.Diagnostics = append(snap.Diagnostics, src.diags...)
		for _, o := range src.objs {
			if o == nil {
				continue
			}
			if first, dup := owner[o.Key()]; dup {
				snap.Diagnostics = append(snap.Diagnostics, config.Diagnostic{
					Level: config.Warning, File: o.File, Line: o.Line,
					Kind: o.Kind, Namespace: o.Namespace, Name: o.Name,
					Message: fmt.Sprintf("also defined by source %q; the definition from source %q is used", first, name),
				})
				continue
			}
			owner[o.Key()] = name
			snap.Objects = append(snap.Objects, o)
		}
	}
	slices.SortFunc(snap.Objects, func(a, b *config.Object) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	snap.Version = version(snap.Objects, mesh)
	return snap
}

// version hashes the objects' identities and generations plus the mesh config. An object
// without a Generation is hashed by its content.
func version(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) string {
	h := sha256.New()
	det := proto.MarshalOptions{Deterministic: true}
	for _, o := range objs {
		gen := o.Generation
		if gen == "" && o.Spec != nil {
			b, err := det.Marshal(o.Spec)
			if err == nil {
				sum := sha256.Sum256(b)
				gen = "content:" + hex.EncodeToString(sum[:])
			}
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\n", o.Kind, o.Namespace, o.Name, o.APIVersion, gen)
	}
	if mesh != nil {
		b, err := det.Marshal(mesh)
		if err == nil {
			h.Write([]byte("mesh\x00"))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
