package discovery

import (
	"log/slog"
	"slices"
	"sync"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/source/file"
)

// diagnostics keeps the current set of configuration problems and logs, in the order a
// change produced them, what appeared and what was resolved: a rejected object first
// ("config rejected", naming file, object and field), then what still serves in its place
// ("still serving the last good version", with the configuration version it came from),
// then warnings about objects that were accepted.
type diagnostics struct {
	log *slog.Logger

	mu        sync.Mutex
	cur       map[string]config.Diagnostic
	published string // the configuration version pushed before the current one
}

// set replaces the current set with all, the problems of configuration version.
func (d *diagnostics) set(all []config.Diagnostic, version string) {
	next := make(map[string]config.Diagnostic, len(all))
	for _, x := range all {
		next[x.String()] = x
	}
	d.mu.Lock()
	prev, lastGood := d.cur, d.published
	d.cur, d.published = next, version
	d.mu.Unlock()

	var added []config.Diagnostic
	for _, x := range all {
		if _, ok := prev[x.String()]; !ok && !slices.ContainsFunc(added, func(a config.Diagnostic) bool { return a.String() == x.String() }) {
			added = append(added, x)
		}
	}
	// Errors, then what keeps serving because of them, then the rest, each in given order.
	rank := func(x config.Diagnostic) int {
		switch {
		case x.Level == config.Error:
			return 0
		case x.Message == file.KeepingLastGood:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(added, func(a, b config.Diagnostic) int { return rank(a) - rank(b) })
	for _, x := range added {
		switch {
		case x.Level == config.Error:
			d.log.Error("config rejected", "problem", x.String())
		case x.Message == file.KeepingLastGood:
			d.log.Warn("still serving the last good version", "object", x.Kind+" "+x.Namespace+"/"+x.Name,
				"file", x.File, "from_version", lastGood)
		case x.Level == config.Warning:
			d.log.Warn("config accepted with a warning", "problem", x.String())
		default:
			d.log.Info("config note", "note", x.String())
		}
	}
	for _, x := range prev {
		if _, ok := next[x.String()]; !ok && x.Message != file.KeepingLastGood {
			d.log.Info("config problem resolved", "problem", x.String())
		}
	}
}

func (d *diagnostics) get() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.cur))
	for k := range d.cur {
		out = append(out, k)
	}
	return out
}
