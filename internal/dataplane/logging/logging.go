// Package logging gives every data-plane component its own slog.Logger whose level can be
// changed while the sidecar runs, with Envoy's /logging semantics: named loggers (admin,
// config, connection, http, router, upstream, ...), Envoy's level names, one level per name.
//
// It sits beside the request path: proxy, xdsclient, cluster, forward and the agent take
// a logger from the Registry at start-up; the admin API (/logging) changes the levels, for
// good or for a while (timed.go: each timed change reverts what it set).
// A level check is one atomic load, so disabled debug logging costs almost nothing.
package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Level is a log level with Envoy's names. Its value is the slog level it maps to.
type Level int

// Envoy's levels, lowest first. Off is above every level a record can have.
const (
	Trace    Level = -8
	Debug    Level = Level(slog.LevelDebug)
	Info     Level = Level(slog.LevelInfo)
	Warning  Level = Level(slog.LevelWarn)
	Error    Level = Level(slog.LevelError)
	Critical Level = 12
	Off      Level = 1 << 20
)

// Levels lists every level in Envoy's order (the order /logging prints them in).
var Levels = []Level{Trace, Debug, Info, Warning, Error, Critical, Off}

// ErrUnknownLevel is returned (wrapped) by ParseLevel.
var ErrUnknownLevel = errors.New("unknown logger level")

// ErrUnknownLogger is returned (wrapped) by Registry.Set for a name it does not know.
var ErrUnknownLogger = errors.New("unrecognized logger name")

// ParseLevel parses Envoy's level names: trace, debug, info, warning (or warn), error,
// critical, off. Names are case-sensitive, as Envoy's are.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "trace":
		return Trace, nil
	case "debug":
		return Debug, nil
	case "info":
		return Info, nil
	case "warning", "warn":
		return Warning, nil
	case "error":
		return Error, nil
	case "critical":
		return Critical, nil
	case "off":
		return Off, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownLevel, s)
}

// String returns Envoy's name for the level. A value between two levels takes the name
// of the lower one.
func (l Level) String() string {
	switch {
	case l >= Off:
		return "off"
	case l >= Critical:
		return "critical"
	case l >= Error:
		return "error"
	case l >= Warning:
		return "warning"
	case l >= Info:
		return "info"
	case l >= Debug:
		return "debug"
	default:
		return "trace"
	}
}

// KnownLoggers are the names every Registry starts with: Envoy's logger names that Lucid
// uses, plus Lucid's own "agent" and "probes".
var KnownLoggers = []string{
	"admin", "agent", "config", "connection", "hc", "http", "http2", "main", "misc",
	"pool", "probes", "router", "upstream",
}

// NameLevel is one logger and its current level.
type NameLevel struct {
	Name  string
	Level Level
}

// Registry owns the named loggers and their levels. It is safe for concurrent use.
type Registry struct {
	base slog.Handler
	def  Level

	mu      sync.Mutex // guards levels (the map; each value is atomic) and pending
	levels  map[string]*atomic.Int64
	pending map[string][]revertEntry // timed changes still to revert, per logger, oldest first (timed.go)

	now       func() time.Time            // time.Now; tests replace both
	afterFunc func(time.Duration, func()) // time.AfterFunc
}

// NewRegistry returns a registry whose loggers write to w, as text (slog's key=value
// format) or JSON, each starting at defaultLevel. Records carry component=<name>, and
// their level is printed with Envoy's names.
func NewRegistry(w io.Writer, defaultLevel Level, json bool) *Registry {
	opts := &slog.HandlerOptions{
		Level:       slog.Level(Trace), // the per-name level is checked before the handler
		ReplaceAttr: replaceLevel,
	}
	var base slog.Handler
	if json {
		base = slog.NewJSONHandler(w, opts)
	} else {
		base = slog.NewTextHandler(w, opts)
	}
	r := &Registry{base: base, def: defaultLevel, levels: make(map[string]*atomic.Int64), now: time.Now,
		afterFunc: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
	for _, n := range KnownLoggers {
		r.level(n)
	}
	return r
}

func replaceLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, Level(l).String())
		}
	}
	return a
}

// level returns the level cell for name, creating it at the default level.
func (r *Registry) level(name string) *atomic.Int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.levels[name]
	if !ok {
		v = new(atomic.Int64)
		v.Store(int64(r.def))
		r.levels[name] = v
	}
	return v
}

// Logger returns the logger for name, with component=name. A name that is not yet known
// is added at the default level and from then on listed and settable like the others.
// The level is checked per record, so Set takes effect on loggers already handed out.
func (r *Registry) Logger(name string) *slog.Logger {
	h := &handler{level: r.level(name), inner: r.base.WithAttrs([]slog.Attr{slog.String("component", name)})}
	return slog.New(h)
}

// Set changes one logger's level and cancels its pending reverts. An unknown name is an
// error wrapping ErrUnknownLogger ("unrecognized logger name: x").
func (r *Registry) Set(name string, l Level) error {
	return r.SetLevels([]NameLevel{{Name: name, Level: l}})
}

// SetLevels changes several loggers at once: either every name is known and all change,
// or none does (Envoy's /logging?paths= semantics). Their pending reverts are cancelled.
func (r *Registry) SetLevels(changes []NameLevel) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range changes {
		if _, ok := r.levels[c.Name]; !ok {
			return errUnknown(c.Name)
		}
	}
	for _, c := range changes {
		r.levels[c.Name].Store(int64(c.Level))
		r.cancelLocked(c.Name)
	}
	return nil
}

func errUnknown(name string) error { return fmt.Errorf("%w: %s", ErrUnknownLogger, name) }

// SetAll changes every logger's level, and the level of loggers added later, and cancels
// every pending revert.
func (r *Registry) SetAll(l Level) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.def = l
	for name, v := range r.levels {
		v.Store(int64(l))
		r.cancelLocked(name)
	}
}

// Levels returns every logger with its current level, sorted by name.
func (r *Registry) Levels() []NameLevel {
	r.mu.Lock()
	out := make([]NameLevel, 0, len(r.levels))
	for n, v := range r.levels {
		out = append(out, NameLevel{Name: n, Level: Level(v.Load())})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b NameLevel) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// handler checks the named level, then hands the record to the shared base handler.
type handler struct {
	level *atomic.Int64
	inner slog.Handler
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return int64(l) >= h.level.Load()
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	if err := h.inner.Handle(ctx, rec); err != nil {
		return fmt.Errorf("logging: %w", err)
	}
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{level: h.level, inner: h.inner.WithAttrs(attrs)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{level: h.level, inner: h.inner.WithGroup(name)}
}
