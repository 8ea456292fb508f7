package store

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func obj(kind, ns, name, gen string) *config.Object {
	return &config.Object{Kind: kind, Namespace: ns, Name: name, Generation: gen, APIVersion: "networking.istio.io/v1"}
}

// runner starts Run in the background and records every build.
type runner struct {
	builds chan *Snapshot
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, s *Store, build func(*Snapshot)) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{builds: make(chan *Snapshot, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		s.Run(ctx, func(snap *Snapshot) {
			if build != nil {
				build(snap)
			}
			r.builds <- snap
		})
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) next(t *testing.T, within time.Duration) *Snapshot {
	t.Helper()
	select {
	case snap := <-r.builds:
		return snap
	case <-time.After(within):
		t.Fatalf("no build within %v", within)
		return nil
	}
}

func (r *runner) none(t *testing.T, during time.Duration) {
	t.Helper()
	select {
	case snap := <-r.builds:
		t.Fatalf("unexpected extra build (version %s, %d objects)", snap.Version, len(snap.Objects))
	case <-time.After(during):
	}
}

func names(snap *Snapshot) []string {
	var out []string
	for _, o := range snap.Objects {
		out = append(out, o.Key())
	}
	return out
}

func TestDebounceMergesBurst(t *testing.T) {
	const debounce = 400 * time.Millisecond
	s := New(discard(), debounce)
	r := start(t, s, nil)

	began := time.Now()
	for i := range 20 {
		s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", fmt.Sprint(i))}, nil)
	}
	snap := r.next(t, 5*time.Second)
	if waited := time.Since(began); waited < debounce {
		t.Errorf("built after %v, before the %v quiet period", waited, debounce)
	}
	if got := snap.Objects[0].Generation; got != "19" {
		t.Errorf("build saw generation %q, want the newest (19)", got)
	}
	r.none(t, 2*debounce)
}

func TestMaxWaitBoundsContinuousUpdates(t *testing.T) {
	// The quiet period is far longer than the test: only maxWait can start a build
	// while updates keep coming every 5ms.
	const debounce = time.Minute
	s := New(discard(), debounce)
	s.maxWait = 300 * time.Millisecond
	r := start(t, s, nil)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	began := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", fmt.Sprint(i))}, nil)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	first := r.next(t, 10*time.Second)
	if took := time.Since(began); took < s.maxWait {
		t.Errorf("first build after %v, want >= maxWait %v", took, s.maxWait)
	}
	// Builds keep coming, each with newer state, while the updates go on.
	second := r.next(t, 10*time.Second)
	if first.Version == second.Version {
		t.Errorf("second build has the same version %s as the first", first.Version)
	}
}

func TestOneBuildInFlight(t *testing.T) {
	s := New(discard(), 20*time.Millisecond)
	var inflight, maxInflight atomic.Int32
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	var calls atomic.Int32
	r := start(t, s, func(*Snapshot) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		if n > maxInflight.Load() {
			maxInflight.Store(n)
		}
		started <- struct{}{}
		if calls.Add(1) == 1 {
			<-release // the first build is slow
		}
	})

	s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", "v1")}, nil)
	<-started
	// While the first build blocks, a backlog of updates arrives.
	for i := 2; i <= 6; i++ {
		s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", fmt.Sprintf("v%d", i))}, nil)
		time.Sleep(30 * time.Millisecond) // longer than debounce: each would be its own build
	}
	select {
	case <-started:
		t.Fatal("a second build started while the first was still running")
	default:
	}
	close(release)

	first := r.next(t, 5*time.Second)
	second := r.next(t, 5*time.Second)
	if g := first.Objects[0].Generation; g != "v1" {
		t.Errorf("first build generation %q, want v1", g)
	}
	if g := second.Objects[0].Generation; g != "v6" {
		t.Errorf("second build generation %q, want the latest v6 (no backlog)", g)
	}
	r.none(t, 150*time.Millisecond)
	if m := maxInflight.Load(); m != 1 {
		t.Errorf("max concurrent builds = %d, want 1", m)
	}
}

func TestUpdateBeforeRunIsBuilt(t *testing.T) {
	s := New(discard(), 10*time.Millisecond)
	s.Update("file", []*config.Object{obj(config.KindVirtualService, "default", "vs", "1")},
		[]config.Diagnostic{{Level: config.Error, File: "bad.yaml", Message: "boom"}})
	r := start(t, s, nil)
	snap := r.next(t, 5*time.Second)
	if len(snap.Objects) != 1 || len(snap.Diagnostics) != 1 {
		t.Fatalf("snapshot = %v objects, %v diagnostics; want 1 and 1", names(snap), snap.Diagnostics)
	}
}

func TestUnchangedSnapshotSkipped(t *testing.T) {
	s := New(discard(), 10*time.Millisecond)
	r := start(t, s, nil)
	objs := []*config.Object{obj(config.KindVirtualService, "default", "vs", "1")}
	s.Update("file", objs, nil)
	r.next(t, 5*time.Second)

	s.Update("file", objs, nil) // same content again
	r.none(t, 100*time.Millisecond)

	diags := []config.Diagnostic{{Level: config.Error, File: "x.yaml", Message: "bad"}}
	s.Update("file", objs, diags) // same objects, new diagnostic: built
	snap := r.next(t, 5*time.Second)
	if len(snap.Diagnostics) != 1 {
		t.Errorf("diagnostics = %v, want the new one", snap.Diagnostics)
	}
}

func TestRunStopsWhileWaiting(t *testing.T) {
	s := New(discard(), time.Hour)
	r := start(t, s, nil)
	s.Update("file", nil, nil)
	time.Sleep(10 * time.Millisecond)
	r.stop() // must return although the debounce period has not passed
	r.none(t, 10*time.Millisecond)
}

func TestMerge(t *testing.T) {
	se := func(name, gen string) *config.Object { return obj(config.KindServiceEntry, "default", name, gen) }
	tests := []struct {
		name      string
		sources   map[string]sourceState
		wantNames []string
		wantDiags int
	}{
		{
			name: "sorted by kind, namespace, name across sources",
			sources: map[string]sourceState{
				"kube": {objs: []*config.Object{obj(config.KindVirtualService, "b", "x", "1"), se("zeta", "1")}},
				"file": {objs: []*config.Object{obj(config.KindVirtualService, "a", "y", "1"), se("alpha", "1"), nil}},
			},
			wantNames: []string{
				"ServiceEntry default/alpha", "ServiceEntry default/zeta",
				"VirtualService a/y", "VirtualService b/x",
			},
		},
		{
			name: "duplicate across sources: first source wins, warning",
			sources: map[string]sourceState{
				"file": {objs: []*config.Object{se("svc", "file-gen")}},
				"kube": {objs: []*config.Object{se("svc", "kube-gen")}, diags: []config.Diagnostic{{Message: "kube says"}}},
			},
			wantNames: []string{"ServiceEntry default/svc"},
			wantDiags: 2,
		},
		{name: "empty", sources: map[string]sourceState{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := merge(tc.sources, nil)
			if got := names(snap); fmt.Sprint(got) != fmt.Sprint(tc.wantNames) {
				t.Errorf("objects = %v, want %v", got, tc.wantNames)
			}
			if len(snap.Diagnostics) != tc.wantDiags {
				t.Errorf("diagnostics = %v, want %d", snap.Diagnostics, tc.wantDiags)
			}
			if len(snap.Version) != 12 {
				t.Errorf("version %q, want 12 hex characters", snap.Version)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	base := func() map[string]sourceState {
		return map[string]sourceState{"file": {objs: []*config.Object{
			obj(config.KindServiceEntry, "default", "a", "g1"),
			obj(config.KindDestinationRule, "default", "b", "g1"),
		}}}
	}
	v0 := merge(base(), nil).Version

	reordered := map[string]sourceState{"file": {objs: []*config.Object{
		obj(config.KindDestinationRule, "default", "b", "g1"),
		obj(config.KindServiceEntry, "default", "a", "g1"),
	}}}
	changedGen := base()
	changedGen["file"].objs[0].Generation = "g2"
	noGen := func(host string) map[string]sourceState {
		o := obj(config.KindServiceEntry, "default", "a", "")
		o.Spec = &networkingv1alpha3.ServiceEntry{Hosts: []string{host}}
		return map[string]sourceState{"file": {objs: []*config.Object{o}}}
	}

	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"same content, other order", v0, merge(reordered, nil).Version, true},
		{"generation changed", v0, merge(changedGen, nil).Version, false},
		{"mesh config set", v0, merge(base(), &meshv1alpha1.MeshConfig{EnableTracing: true}).Version, false},
		{"mesh config changed",
			merge(base(), &meshv1alpha1.MeshConfig{EnableTracing: true}).Version,
			merge(base(), &meshv1alpha1.MeshConfig{EnableTracing: false, AccessLogFile: "/dev/stdout"}).Version, false},
		{"no generation: hashed by content", merge(noGen("a.com"), nil).Version, merge(noGen("b.com"), nil).Version, false},
		{"no generation: equal content", merge(noGen("a.com"), nil).Version, merge(noGen("a.com"), nil).Version, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.a == tc.b) != tc.same {
				t.Errorf("versions %q and %q: same=%v, want %v", tc.a, tc.b, tc.a == tc.b, tc.same)
			}
		})
	}
}

// Endpoint-only updates skip the quiet period (PILOT_ENABLE_EDS_DEBOUNCE off); a
// configuration update waits for it, and endpoint updates that arrive meanwhile wait with it.
func TestEndpointUpdatesSkipTheQuietPeriod(t *testing.T) {
	const quiet = 2 * time.Second
	var debounced []time.Duration
	var mu sync.Mutex
	s := NewWithOptions(discard(), Options{
		DebounceAfter: quiet, DebounceMax: time.Hour,
		EndpointsOnly: func(old, cur *config.Object) bool { return cmp.Or(old, cur).Kind == config.KindWorkloadEntry },
		OnDebounce:    func(d time.Duration) { mu.Lock(); debounced = append(debounced, d); mu.Unlock() },
	})
	s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", "1")}, nil)
	r := start(t, s, nil)
	first := r.next(t, 5*time.Second) // a source's first update is a configuration change
	if first.EndpointsOnly {
		t.Error("the first build is marked endpoints-only")
	}

	began := time.Now()
	s.Update("file", []*config.Object{
		obj(config.KindServiceEntry, "default", "svc", "1"),
		obj(config.KindWorkloadEntry, "default", "w", "2"),
	}, nil)
	snap := r.next(t, 5*time.Second)
	if !snap.EndpointsOnly || time.Since(began) > quiet/2 {
		t.Fatalf("endpoint update built after %v (endpointsOnly=%v), want at once", time.Since(began), snap.EndpointsOnly)
	}
	if snap.Start.Before(began) {
		t.Errorf("Start %v is before the update at %v", snap.Start, began)
	}

	s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", "3"), obj(config.KindWorkloadEntry, "default", "w", "2")}, nil)
	s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", "3"), obj(config.KindWorkloadEntry, "default", "w", "4")}, nil)
	r.none(t, 300*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(debounced) != 2 {
		t.Errorf("debounce observed %d times, want once per build (2)", len(debounced))
	}
}

// The mesh config is set at start, before the file source has read its directory: on a
// busy machine the first quiet period can end before that, and a build then would hand
// every proxy an empty configuration. With Expect, the first build waits for the source.
func TestFirstBuildWaitsForExpectedSources(t *testing.T) {
	s := NewWithOptions(discard(), Options{DebounceAfter: 10 * time.Millisecond, EDSDebounce: true, Expect: []string{"file"}})
	r := start(t, s, nil)
	s.SetMesh(nil)
	r.none(t, 100*time.Millisecond)
	s.Update("file", []*config.Object{obj(config.KindServiceEntry, "default", "svc", "1")}, nil)
	if snap := r.next(t, 5*time.Second); len(snap.Objects) != 1 {
		t.Errorf("first build has %d objects, want the file source's 1", len(snap.Objects))
	}
}
