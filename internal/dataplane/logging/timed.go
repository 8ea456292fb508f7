package logging

import (
	"cmp"
	"slices"
	"time"
)

// Timed changes: a level change that reverts by itself (the admin API's /logging?…&for=5m,
// `lucid proxy-config log --for`). Each timed change reverts what it set, whatever other
// changes come in between:
//
//   - when it expires, each logger it set goes back to the level it had before the change;
//   - if a later timed change set that logger again and is still pending, that later change
//     now reverts to the earlier level instead (the expired change's time is up, so its level
//     must not come back), and the logger keeps the later level until then;
//   - an untimed change of a logger (SetLevels, SetAll) is the user's explicit setting: it
//     cancels every pending revert of that logger.
//
// Pending lists what will happen and when.

// timedChange is one timed change; its entries sit on the stacks of the loggers it set.
type timedChange struct {
	at       time.Time
	reverted func([]NameLevel)
}

// revertEntry is one logger's part of a timed change: the level it set and the level to go
// back to.
type revertEntry struct {
	change    *timedChange
	set, prev Level
}

// Step is one future level of a logger.
type Step struct {
	At    time.Time
	Level Level
}

// Pending is a logger's reverts to come, in time order.
type Pending struct {
	Name  string
	Steps []Step
}

// SetLevelsFor is SetLevels for a while: after d the loggers changed go back (see the rules
// above). reverted, if not nil, is called with what was restored when the time is up.
func (r *Registry) SetLevelsFor(changes []NameLevel, d time.Duration, reverted func([]NameLevel)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range changes {
		if _, ok := r.levels[c.Name]; !ok {
			return errUnknown(c.Name)
		}
	}
	r.setForLocked(changes, d, reverted)
	return nil
}

// SetAllFor is SetAll for a while: after d every logger known now goes back to its level.
// Loggers added meanwhile start at the default level, which a timed change leaves as it is.
func (r *Registry) SetAllFor(l Level, d time.Duration, reverted func([]NameLevel)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changes := make([]NameLevel, 0, len(r.levels))
	for name := range r.levels {
		changes = append(changes, NameLevel{Name: name, Level: l})
	}
	r.setForLocked(changes, d, reverted)
}

// setForLocked applies changes and schedules their revert. r.mu held.
func (r *Registry) setForLocked(changes []NameLevel, d time.Duration, reverted func([]NameLevel)) {
	tc := &timedChange{at: r.now().Add(d), reverted: reverted}
	if r.pending == nil {
		r.pending = map[string][]revertEntry{}
	}
	for _, c := range changes {
		cell := r.levels[c.Name]
		r.pending[c.Name] = append(r.pending[c.Name], revertEntry{change: tc, set: c.Level, prev: Level(cell.Load())})
		cell.Store(int64(c.Level))
	}
	r.afterFunc(d, func() { r.expire(tc) })
}

// expire reverts what tc set and is still its to revert.
func (r *Registry) expire(tc *timedChange) {
	var restored []NameLevel
	r.mu.Lock()
	for name, stack := range r.pending {
		i := slices.IndexFunc(stack, func(e revertEntry) bool { return e.change == tc })
		if i < 0 {
			continue
		}
		if i == len(stack)-1 { // the latest change of this logger: put its level back
			r.levels[name].Store(int64(stack[i].prev))
			restored = append(restored, NameLevel{Name: name, Level: stack[i].prev})
		} else { // a later change is pending: it reverts to what was before this one
			stack[i+1].prev = stack[i].prev
		}
		stack = slices.Delete(stack, i, i+1)
		if len(stack) == 0 {
			delete(r.pending, name)
		} else {
			r.pending[name] = stack
		}
	}
	r.mu.Unlock()
	if len(restored) > 0 && tc.reverted != nil {
		slices.SortFunc(restored, func(a, b NameLevel) int { return cmp.Compare(a.Name, b.Name) })
		tc.reverted(restored)
	}
}

// cancelLocked drops the pending reverts of name (an explicit change wins). r.mu held.
func (r *Registry) cancelLocked(name string) { delete(r.pending, name) }

// Pending lists every logger with reverts to come and the levels it will have, sorted by
// name.
func (r *Registry) Pending() []Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Pending
	for name, stack := range r.pending {
		out = append(out, Pending{Name: name, Steps: steps(stack)})
	}
	slices.SortFunc(out, func(a, b Pending) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// steps plays a logger's stack forward in time with expire's rules.
func steps(stack []revertEntry) []Step {
	stack = slices.Clone(stack)
	var out []Step
	for len(stack) > 0 {
		i := 0
		for j, e := range stack {
			if e.change.at.Before(stack[i].change.at) {
				i = j
			}
		}
		if i == len(stack)-1 {
			out = append(out, Step{At: stack[i].change.at, Level: stack[i].prev})
		} else {
			stack[i+1].prev = stack[i].prev
		}
		stack = slices.Delete(stack, i, i+1)
	}
	return out
}
