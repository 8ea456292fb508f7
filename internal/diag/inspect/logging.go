package inspect

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
)

// The sidecar's /logging, as `lucid proxy-config log` uses it: Envoy's listing and changes
// (level=, paths=) plus Lucid's for=<duration>, with which the sidecar itself reverts the
// change when the time is up (internal/dataplane/admin).

// ErrNoLogChange is returned (wrapped) by ParseLogChange for a --level that sets nothing.
var ErrNoLogChange = errors.New("nothing to change")

// LogChange is what istioctl's --level asks for: a level for every logger, and/or levels
// for some loggers ("info,http:debug": every logger info, then http debug).
type LogChange struct {
	All   string              // "" when not set
	Names []logging.NameLevel // in the order given
}

// ParseLogChange parses --level: "debug", "http:debug,router:trace", or both.
func ParseLogChange(s string) (*LogChange, error) {
	c := &LogChange{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, lvl, per := strings.Cut(item, ":")
		if !per {
			name, lvl = "", item
		}
		l, err := logging.ParseLevel(lvl)
		if err != nil {
			return nil, fmt.Errorf("--level %q: unrecognized level %q (want trace, debug, info, warning, error, critical, off)", s, lvl)
		}
		switch {
		case !per:
			c.All = lvl
		case name == "":
			return nil, fmt.Errorf("--level %q: empty logger name", s)
		default:
			c.Names = append(c.Names, logging.NameLevel{Name: name, Level: l})
		}
	}
	if c.All == "" && len(c.Names) == 0 {
		return nil, fmt.Errorf("--level %q: %w", s, ErrNoLogChange)
	}
	return c, nil
}

// queries are the /logging queries that make the change: every logger first, then the
// named ones.
func (c *LogChange) queries() []string {
	var qs []string
	if c.All != "" {
		qs = append(qs, "level="+c.All)
	}
	if len(c.Names) > 0 {
		paths := make([]string, len(c.Names))
		for i, nl := range c.Names {
			paths[i] = nl.Name + ":" + nl.Level.String()
		}
		qs = append(qs, "paths="+strings.Join(paths, ","))
	}
	return qs
}

// LogListing is a sidecar's /logging answer.
type LogListing struct {
	Text   []byte            // as the sidecar wrote it (with its pending reverts)
	Levels map[string]string // logger → level, from the "active loggers:" section
}

// ParseLogListing reads /logging's answer.
func ParseLogListing(body []byte) *LogListing {
	l := &LogListing{Text: body, Levels: map[string]string{}}
	section := ""
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, " ") {
			section = strings.TrimSpace(line)
			continue
		}
		if section != "active loggers:" {
			continue
		}
		if name, lvl, ok := strings.Cut(strings.TrimSpace(line), ": "); ok {
			l.Levels[name] = lvl
		}
	}
	return l
}

// Restore is the --level value that puts the listed levels back: the most common level for
// every logger, then the loggers that differ.
func (l *LogListing) Restore() string {
	count := map[string]int{}
	for _, lvl := range l.Levels {
		count[lvl]++
	}
	common, best := "", -1
	for lvl, n := range count {
		if n > best || (n == best && lvl < common) {
			common, best = lvl, n
		}
	}
	parts := []string{common}
	for _, name := range slices.Sorted(maps.Keys(l.Levels)) {
		if l.Levels[name] != common {
			parts = append(parts, name+":"+l.Levels[name])
		}
	}
	return strings.Join(parts, ",")
}

// LogLevels reads a sidecar's log levels and pending reverts.
func (c *Client) LogLevels(ctx context.Context, admin string) (*LogListing, error) {
	b, err := c.Get(ctx, admin, "/logging")
	if err != nil {
		return nil, fmt.Errorf("read %s/logging: %w", admin, err)
	}
	return ParseLogListing(b), nil
}

// SetLogLevels makes the change on a sidecar, for d when d > 0 (the sidecar reverts it by
// itself), and returns the listing before and after. A logger the sidecar does not have
// is an error naming it, and nothing changes.
func (c *Client) SetLogLevels(ctx context.Context, admin string, ch *LogChange, d time.Duration) (before, after *LogListing, err error) {
	before, err = c.LogLevels(ctx, admin)
	if err != nil {
		return nil, nil, err
	}
	for _, nl := range ch.Names {
		if _, ok := before.Levels[nl.Name]; !ok {
			return nil, nil, fmt.Errorf("unrecognized logger name: %s", nl.Name)
		}
	}
	var body []byte
	for _, q := range ch.queries() {
		if d > 0 {
			q += "&for=" + d.String()
		}
		if body, err = c.Post(ctx, admin, "/logging?"+q); err != nil {
			return nil, nil, fmt.Errorf("set levels on %s: %w", admin, err)
		}
	}
	return before, ParseLogListing(body), nil
}
