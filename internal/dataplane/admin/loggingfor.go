package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
// Each timed change reverts what it set, however many are pending (logging.Registry's
// rules); an untimed change of a logger cancels its pending reverts (the user's explicit
// setting wins). The listing ends with the pending reverts, when there are any.

// maxLoggingFor bounds for=: a revert more than a day away is not a temporary change.
const maxLoggingFor = 24 * time.Hour

var errBadFor = errors.New("invalid for= duration (want e.g. 30s, 5m, 1h; at most 24h)")

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
	c, err := parseLoggingQuery(rest)
	if err != nil || c == nil {
		return err
	}
	reg := s.o.Logging
	if d == 0 {
		if c.all {
			reg.SetAll(c.level)
			s.logf(slog.LevelInfo, fmt.Sprintf("change all log levels: level='%s'", c.level))
			return nil
		}
		if err := reg.SetLevels(c.changes); err != nil {
			return errUnknownName
		}
		s.logChanges(c.changes, "")
		return nil
	}
	until := fmt.Sprintf(" for %s (until %s)", d, time.Now().Add(d).Format(time.RFC3339))
	if c.all {
		reg.SetAllFor(c.level, d, s.logReverted)
		s.logf(slog.LevelInfo, fmt.Sprintf("change all log levels: level='%s'%s", c.level, until))
		return nil
	}
	if err := reg.SetLevelsFor(c.changes, d, s.logReverted); err != nil {
		return errUnknownName
	}
	s.logChanges(c.changes, until)
	return nil
}

func (s *server) logChanges(changes []logging.NameLevel, suffix string) {
	for _, nl := range changes {
		s.logf(slog.LevelInfo, fmt.Sprintf("change log level: name='%s' level='%s'%s", nl.Name, nl.Level, suffix))
	}
}

// logReverted is called by the registry when a timed change's time is up.
func (s *server) logReverted(restored []logging.NameLevel) {
	parts := make([]string, len(restored))
	for i, nl := range restored {
		parts[i] = nl.Name + ":" + nl.Level.String()
	}
	s.logf(slog.LevelInfo, "temporary log levels expired, restored: "+strings.Join(parts, ","))
}

// writePending appends the pending reverts to the /logging listing:
//
//	pending reverts:
//	  router: debug at 2026-12-04T09:01:00Z (in 59s), then info at 2026-12-04T09:05:00Z (in 4m59s)
func writePending(b *strings.Builder, reg *logging.Registry, now time.Time) {
	pending := reg.Pending()
	if len(pending) == 0 {
		return
	}
	b.WriteString("pending reverts:\n")
	for _, p := range pending {
		steps := make([]string, len(p.Steps))
		for i, st := range p.Steps {
			steps[i] = fmt.Sprintf("%s at %s (in %s)", st.Level, st.At.UTC().Format(time.RFC3339), st.At.Sub(now).Round(time.Second))
		}
		fmt.Fprintf(b, "  %s: %s\n", p.Name, strings.Join(steps, ", then "))
	}
	b.WriteString("\n")
}
