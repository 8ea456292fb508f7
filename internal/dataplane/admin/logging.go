package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
)

// Envoy's /logging error messages (LogsHandler).
var (
	errParamCount   = errors.New("invalid number of parameters")
	errEmptyPath    = errors.New("empty logger name or empty logger level")
	errUnknownLevel = errors.New("unknown logger level")
	errUnknownName  = errors.New("unknown logger name")
)

const loggingUsage = "usage: /logging?<name>=<level> (change single level)\n" +
	"usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n" +
	"usage: /logging?level=<level> (change all levels)\n" +
	"levels: trace debug info warning error critical off \n"

// loggingChange is what one /logging query asks for: every logger (all) or some.
type loggingChange struct {
	all     bool
	level   logging.Level
	changes []logging.NameLevel
}

// parseLoggingQuery parses /logging's query as Envoy does: exactly one parameter, either
// level=<l>, paths=<name>:<l>,<name>:<l>,... or <name>=<l>. An empty query means "list".
// Names are not checked here (the registry does that). Values are URL-decoded when
// they decode; Envoy itself does not decode, and no valid name or level needs it.
func parseLoggingQuery(raw string) (*loggingChange, error) {
	type kv struct{ k, v string }
	var params []kv
	for seg := range strings.SplitSeq(raw, "&") {
		if seg == "" {
			continue
		}
		k, v, _ := strings.Cut(seg, "=")
		k, v = unescape(k), unescape(v)
		dup := false
		for i := range params {
			if params[i].k == k {
				params[i].v, dup = v, true
			}
		}
		if !dup {
			params = append(params, kv{k, v})
		}
	}
	if len(params) == 0 {
		return nil, nil
	}
	if len(params) != 1 {
		return nil, errParamCount
	}
	key, value := params[0].k, params[0].v
	switch key {
	case "level":
		l, err := parseLevel(value)
		if err != nil {
			return nil, err
		}
		return &loggingChange{all: true, level: l}, nil
	case "paths":
		c := &loggingChange{}
		for pair := range strings.SplitSeq(value, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			name, lvl, _ := strings.Cut(pair, ":")
			name, lvl = strings.TrimSpace(name), strings.TrimSpace(lvl)
			if name == "" || lvl == "" {
				return nil, errEmptyPath
			}
			l, err := parseLevel(lvl)
			if err != nil {
				return nil, err
			}
			c.changes = append(c.changes, logging.NameLevel{Name: name, Level: l})
		}
		return c, nil
	default:
		if key == "" {
			return nil, errEmptyPath
		}
		l, err := parseLevel(value)
		if err != nil {
			return nil, err
		}
		return &loggingChange{changes: []logging.NameLevel{{Name: key, Level: l}}}, nil
	}
}

func parseLevel(s string) (logging.Level, error) {
	l, err := logging.ParseLevel(s)
	if err != nil {
		return 0, errUnknownLevel
	}
	return l, nil
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// logging serves /logging. Listing is allowed with GET (Lucid eases reading); any change
// requires POST, like every state change in Envoy's admin API.
func (s *server) logging(w http.ResponseWriter, r *http.Request) {
	if s.o.Logging == nil {
		unavailable(w, "logging")
		return
	}
	if r.URL.RawQuery != "" && r.Method != http.MethodPost {
		s.methodNotAllowed(w, r, "/logging")
		return
	}
	var b strings.Builder
	code := http.StatusOK
	if err := s.applyLoggingFor(r.URL.RawQuery); err != nil { // for=: loggingfor.go
		code = http.StatusBadRequest
		fmt.Fprintf(&b, "error: %s\n\n", err)
		b.WriteString(loggingUsage)
	}
	b.WriteString("active loggers:\n")
	for _, nl := range s.o.Logging.Levels() {
		fmt.Fprintf(&b, "  %s: %s\n", nl.Name, nl.Level)
	}
	b.WriteString("\n")
	writePending(&b, s.o.Logging, time.Now()) // loggingfor.go
	text(w, code, b.String())
}
