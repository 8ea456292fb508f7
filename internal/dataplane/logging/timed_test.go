package logging

import (
	"io"
	"reflect"
	"testing"
	"time"
)

// fakeTimers replaces the registry's clock and timers: a test fires each timed change's
// revert when it wants, in the order it wants.
type fakeTimers struct {
	now   time.Time
	fires []func()
}

func newTimed(t *testing.T) (*Registry, *fakeTimers) {
	t.Helper()
	r := NewRegistry(io.Discard, Info, false)
	ft := &fakeTimers{now: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}
	r.now = func() time.Time { return ft.now }
	r.afterFunc = func(_ time.Duration, f func()) { ft.fires = append(ft.fires, f) }
	return r, ft
}

func level(r *Registry, name string) Level {
	for _, nl := range r.Levels() {
		if nl.Name == name {
			return nl.Level
		}
	}
	return -100
}

func TestTimedChangesRevertWhatTheySet(t *testing.T) {
	r, ft := newTimed(t)
	var reverted [][]NameLevel
	note := func(nl []NameLevel) { reverted = append(reverted, nl) }

	// 1: router debug for 5m; 2: http debug for 1m. Each reverts its own logger.
	if err := r.SetLevelsFor([]NameLevel{{"router", Debug}}, 5*time.Minute, note); err != nil {
		t.Fatal(err)
	}
	if err := r.SetLevelsFor([]NameLevel{{"http", Debug}}, time.Minute, note); err != nil {
		t.Fatal(err)
	}
	want := []Pending{
		{"http", []Step{{ft.now.Add(time.Minute), Info}}},
		{"router", []Step{{ft.now.Add(5 * time.Minute), Info}}},
	}
	if got := r.Pending(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Pending = %+v\nwant %+v", got, want)
	}
	ft.fires[1]() // the second change expires first: only http goes back
	if level(r, "http") != Info || level(r, "router") != Debug {
		t.Fatalf("after the 1m change: http %s router %s, want info debug", level(r, "http"), level(r, "router"))
	}
	ft.fires[0]()
	if level(r, "router") != Info || len(r.Pending()) != 0 {
		t.Fatalf("after the 5m change: router %s, pending %+v", level(r, "router"), r.Pending())
	}
	if want := [][]NameLevel{{{"http", Info}}, {{"router", Info}}}; !reflect.DeepEqual(reverted, want) {
		t.Errorf("reverted callbacks %v, want %v", reverted, want)
	}
}

func TestTimedChangesOnTheSameLogger(t *testing.T) {
	t.Run("the later change ends first", func(t *testing.T) {
		r, ft := newTimed(t)
		_ = r.SetLevelsFor([]NameLevel{{"router", Debug}}, 5*time.Minute, nil)
		_ = r.SetLevelsFor([]NameLevel{{"router", Trace}}, time.Minute, nil)
		want := []Pending{{"router", []Step{{ft.now.Add(time.Minute), Debug}, {ft.now.Add(5 * time.Minute), Info}}}}
		if got := r.Pending(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Pending = %+v\nwant %+v", got, want)
		}
		ft.fires[1]()
		if level(r, "router") != Debug {
			t.Fatalf("router %s after the trace change ended, want debug (the first change is still on)", level(r, "router"))
		}
		ft.fires[0]()
		if level(r, "router") != Info {
			t.Fatalf("router %s at the end, want info", level(r, "router"))
		}
	})
	t.Run("the earlier change ends first", func(t *testing.T) {
		r, ft := newTimed(t)
		_ = r.SetLevelsFor([]NameLevel{{"router", Debug}}, time.Minute, nil)
		_ = r.SetLevelsFor([]NameLevel{{"router", Trace}}, 5*time.Minute, nil)
		want := []Pending{{"router", []Step{{ft.now.Add(5 * time.Minute), Info}}}}
		if got := r.Pending(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Pending = %+v\nwant %+v", got, want)
		}
		ft.fires[0]()
		if level(r, "router") != Trace {
			t.Fatalf("router %s: the later change keeps its level until it ends", level(r, "router"))
		}
		ft.fires[1]()
		if level(r, "router") != Info {
			t.Fatalf("router %s at the end, want info (not the expired change's debug)", level(r, "router"))
		}
	})
}

func TestExplicitChangeCancelsReverts(t *testing.T) {
	r, ft := newTimed(t)
	r.SetAllFor(Debug, time.Hour, nil)
	if err := r.Set("router", Warning); err != nil {
		t.Fatal(err)
	}
	for _, p := range r.Pending() {
		if p.Name == "router" {
			t.Fatalf("router still has a pending revert after an explicit change: %+v", p)
		}
	}
	ft.fires[0]()
	if level(r, "router") != Warning || level(r, "http") != Info {
		t.Fatalf("router %s http %s, want warning (explicit) and info (reverted)", level(r, "router"), level(r, "http"))
	}
	r.SetAllFor(Trace, time.Hour, nil)
	r.SetAll(Error)
	if len(r.Pending()) != 0 {
		t.Fatalf("SetAll left reverts pending: %+v", r.Pending())
	}
	ft.fires[1]()
	if level(r, "http") != Error {
		t.Fatalf("a cancelled revert ran: http %s", level(r, "http"))
	}
	if err := r.SetLevelsFor([]NameLevel{{"nope", Debug}}, time.Minute, nil); err == nil {
		t.Fatal("unknown logger accepted")
	}
}
