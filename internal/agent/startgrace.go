package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

// startGrace is how long after start a proxy that has not heard from the control plane
// yet is still "starting", not failing: the status server logs "not ready" at debug and
// the xDS client's reconnect warnings are debug lines. A sidecar started with its
// control plane (`lucid up`, a pod beside a running istiod) warns about nothing.
const startGrace = 5 * time.Second

// heardFrom reports whether the xDS client has received any response (accepted or not).
func heardFrom(s xdsclient.Status) bool {
	for _, t := range s.Types {
		if t.Received || t.NackReason != "" {
			return true
		}
	}
	return false
}

// quietWhileStarting wraps log so that, during startGrace after started and until heard
// reports true, warnings are logged at debug. A NACK needs a response, so a rejected
// configuration is always a warning.
func quietWhileStarting(log *slog.Logger, started time.Time, heard func() bool) *slog.Logger {
	return slog.New(&startHandler{inner: log.Handler(), until: started.Add(startGrace), heard: heard})
}

type startHandler struct {
	inner slog.Handler
	until time.Time
	heard func() bool
}

func (h *startHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *startHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && time.Now().Before(h.until) && !h.heard() {
		r.Level = slog.LevelDebug
	}
	if !h.inner.Enabled(ctx, r.Level) {
		return nil
	}
	return h.inner.Handle(ctx, r) //nolint:wrapcheck // a handler's error is the handler's
}

func (h *startHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &startHandler{inner: h.inner.WithAttrs(as), until: h.until, heard: h.heard}
}

func (h *startHandler) WithGroup(name string) slog.Handler {
	return &startHandler{inner: h.inner.WithGroup(name), until: h.until, heard: h.heard}
}
