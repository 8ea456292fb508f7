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
	base := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name                string
		first, second       time.Duration // router debug for first, then trace for second
		pending             []Step
		afterEarlier, final Level // router's level once the earlier revert ran, and at the end
	}{
		{"the later change ends first", 5 * time.Minute, time.Minute,
			[]Step{{base.Add(time.Minute), Debug}, {base.Add(5 * time.Minute), Info}}, Debug, Info},
		{"the earlier change ends first", time.Minute, 5 * time.Minute,
			[]Step{{base.Add(5 * time.Minute), Info}}, Trace, Info}, // the expired change's debug never comes back
	} {
		t.Run(c.name, func(t *testing.T) {
			r, ft := newTimed(t)
			_ = r.SetLevelsFor([]NameLevel{{"router", Debug}}, c.first, nil)
			_ = r.SetLevelsFor([]NameLevel{{"router", Trace}}, c.second, nil)
			if got, want := r.Pending(), []Pending{{"router", c.pending}}; !reflect.DeepEqual(got, want) {
				t.Fatalf("Pending = %+v\nwant %+v", got, want)
			}
			earlier, later := ft.fires[0], ft.fires[1]
			if c.second < c.first {
				earlier, later = later, earlier
			}
			earlier()
			if level(r, "router") != c.afterEarlier {
				t.Fatalf("router %s after the earlier revert, want %s", level(r, "router"), c.afterEarlier)
			}
			later()
			if level(r, "router") != c.final {
				t.Fatalf("router %s at the end, want %s", level(r, "router"), c.final)
			}
		})
	}
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
