package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
)

// Lucid's extension to Envoy's /logging: a "for=<duration>" parameter next to the usual
// one (level=, paths= or <name>=) makes the change temporary. The sidecar itself puts the
// levels back when the time is up, so a raised debug level never outlives the CLI that
// raised it, nor a forgotten terminal:
//
//	POST /logging?level=debug&for=5m
//	POST /logging?paths=http:debug,router:debug&for=30s
//
// The levels restored are those in force before the first timed change; another timed
// change while one is pending extends the deadline to the new duration. An untimed change
// cancels the pending revert (the user's explicit setting wins).

// maxLoggingFor bounds for=: a revert more than a day away is not a temporary change.
const maxLoggingFor = 24 * time.Hour

var errBadFor = errors.New("invalid for= duration (want e.g. 30s, 5m, 1h; at most 24h)")

// pendingRevert is one registry's scheduled revert.
type pendingRevert struct {
	timer *time.Timer
	prev  []logging.NameLevel
	at    time.Time
}

// reverts holds the pending revert of each registry (a sidecar has one). Guarded by revertMu.
var (
	revertMu sync.Mutex
	reverts  = map[*logging.Registry]*pendingRevert{}
)

// splitFor removes "for=<d>" from a raw /logging query.
func splitFor(raw string) (rest string, d time.Duration, err error) {
	var keep []string
	for seg := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(seg, "=")
		if unescape(k) != "for" {
			if seg != "" {
				keep = append(keep, seg)
			}
			continue
		}
		d, err = time.ParseDuration(unescape(v))
		if err != nil || d <= 0 || d > maxLoggingFor {
			return "", 0, errBadFor
		}
	}
	return strings.Join(keep, "&"), d, nil
}

// applyLoggingFor applies a /logging query, honouring for=.
func (s *server) applyLoggingFor(raw string) error {
	rest, d, err := splitFor(raw)
	if err != nil {
		return err
	}
	if d > 0 && rest == "" {
		return errParamCount
	}
	prev := s.o.Logging.Levels()
	if err := s.applyLogging(rest); err != nil || rest == "" {
		return err
	}
	s.scheduleRevert(prev, d)
	return nil
}

// scheduleRevert arms (d > 0) or cancels (d == 0) the registry's revert.
func (s *server) scheduleRevert(prev []logging.NameLevel, d time.Duration) {
	reg := s.o.Logging
	revertMu.Lock()
	defer revertMu.Unlock()
	p := reverts[reg]
	if d == 0 {
		if p != nil {
			p.timer.Stop()
			delete(reverts, reg)
			s.logf(slog.LevelInfo, "log levels changed explicitly: pending revert cancelled")
		}
		return
	}
	if p != nil {
		p.timer.Stop()
		prev = p.prev // restore what was in force before the first timed change
	}
	p = &pendingRevert{prev: prev, at: time.Now().Add(d)}
	p.timer = time.AfterFunc(d, func() { s.revert(reg, p) })
	reverts[reg] = p
	s.logf(slog.LevelInfo, fmt.Sprintf("log levels revert in %s (at %s)", d, p.at.Format(time.RFC3339)))
}

func (s *server) revert(reg *logging.Registry, p *pendingRevert) {
	revertMu.Lock()
	if reverts[reg] != p {
		revertMu.Unlock()
		return // cancelled or replaced meanwhile
	}
	delete(reverts, reg)
	revertMu.Unlock()
	restoreLevels(reg, p.prev)
	s.logf(slog.LevelInfo, "temporary log levels expired: previous levels restored")
}

// restoreLevels puts levels back; when they were all equal, SetAll also restores the
// level of loggers added later.
func restoreLevels(reg *logging.Registry, prev []logging.NameLevel) {
	if len(prev) == 0 {
		return
	}
	same := true
	for _, nl := range prev {
		if nl.Level != prev[0].Level {
			same = false
			break
		}
	}
	if same {
		reg.SetAll(prev[0].Level)
		return
	}
	_ = reg.SetLevels(prev) // every name in prev is known: they came from the same registry
}

// RevertPending reports when the registry's temporary levels revert (zero when none is
// pending).
func RevertPending(reg *logging.Registry) time.Time {
	revertMu.Lock()
	defer revertMu.Unlock()
	if p := reverts[reg]; p != nil {
		return p.at
	}
	return time.Time{}
}
