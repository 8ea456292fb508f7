package tap

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Rates a listener may ask for, in events per second.
const (
	DefaultRPS = 100
	MaxRPS     = 1000
)

// Filter selects the requests a listener gets. The zero Filter takes every request at
// DefaultRPS.
type Filter struct {
	To         string // destination service: its host, or a prefix ending before a dot ("reviews")
	PathPrefix string
	Method     string
	Direction  string          // "inbound", "outbound" or "" for both
	Status     []StatusMatch   // any of; empty: every status
	Flags      streaminfo.Flag // any of; 0: every request
	ErrorsOnly bool            // status ≥ 500 or any response flag
	RPS        int             // events per second at most (DefaultRPS when 0)
}

// StatusMatch is one status code ("503") or one class ("5xx": Class 5).
type StatusMatch struct{ Code, Class int }

func (f *Filter) defaults() {
	if f.RPS <= 0 {
		f.RPS = DefaultRPS
	}
	f.RPS = min(f.RPS, MaxRPS)
}

var flagByName = func() map[string]streaminfo.Flag {
	m := map[string]streaminfo.Flag{}
	for _, f := range streaminfo.AllFlags() {
		m[f.String()] = f
	}
	return m
}()

// ParseFilter reads a filter from query parameters (contract.TapFilter names them). An
// error names the parameter and what it accepts.
func ParseFilter(q url.Values) (Filter, error) {
	f := Filter{
		To:         q.Get("to"),
		PathPrefix: q.Get("path"),
		Method:     strings.ToUpper(q.Get("method")),
		Direction:  q.Get("direction"),
	}
	switch f.Direction {
	case "", "inbound", "outbound":
	default:
		return Filter{}, fmt.Errorf("direction %q: want inbound or outbound", f.Direction)
	}
	if f.PathPrefix != "" && !strings.HasPrefix(f.PathPrefix, "/") {
		return Filter{}, fmt.Errorf("path %q: want a prefix starting with /", f.PathPrefix)
	}
	if s := q.Get("status"); s != "" {
		for part := range strings.SplitSeq(s, ",") {
			m, err := parseStatus(strings.TrimSpace(part))
			if err != nil {
				return Filter{}, fmt.Errorf("status %q: %w", s, err)
			}
			f.Status = append(f.Status, m)
		}
	}
	if s := q.Get("flags"); s != "" {
		for part := range strings.SplitSeq(s, ",") {
			fl, ok := flagByName[strings.ToUpper(strings.TrimSpace(part))]
			if !ok {
				return Filter{}, fmt.Errorf("flags %q: %q is not an Envoy response flag (UH, UF, UC, UO, NR, URX, UT, DC, ...)", s, part)
			}
			f.Flags |= fl
		}
	}
	if s := q.Get("errors"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Filter{}, fmt.Errorf("errors %q: want true or false", s)
		}
		f.ErrorsOnly = b
	}
	if s := q.Get("rps"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxRPS {
			return Filter{}, fmt.Errorf("rps %q: want a number of events per second from 1 to %d", s, MaxRPS)
		}
		f.RPS = n
	}
	return f, nil
}

func parseStatus(s string) (StatusMatch, error) {
	if len(s) == 3 && strings.HasSuffix(strings.ToLower(s), "xx") && s[0] >= '1' && s[0] <= '5' {
		return StatusMatch{Class: int(s[0] - '0')}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 599 {
		return StatusMatch{}, fmt.Errorf("%q is neither a status code (200, 503) nor a class (2xx, 5xx)", s)
	}
	return StatusMatch{Code: n}, nil
}

// Match reports whether the filter takes the request. It allocates nothing.
func (f *Filter) Match(in *streaminfo.Info) bool {
	if f.Direction != "" && in.Direction != f.Direction {
		return false
	}
	if f.Method != "" && in.Method != f.Method {
		return false
	}
	if f.PathPrefix != "" && !strings.HasPrefix(in.Path, f.PathPrefix) {
		return false
	}
	if f.ErrorsOnly && in.ResponseCode < 500 && in.Flags == 0 {
		return false
	}
	if f.Flags != 0 && in.Flags&f.Flags == 0 {
		return false
	}
	if len(f.Status) > 0 && !f.statusMatches(in.ResponseCode) {
		return false
	}
	if f.To != "" && !hostMatches(in.DestinationService, f.To) && !hostMatches(authorityHost(in.Authority), f.To) {
		return false
	}
	return true
}

func (f *Filter) statusMatches(code int) bool {
	for _, m := range f.Status {
		if (m.Class != 0 && code/100 == m.Class) || (m.Class == 0 && code == m.Code) {
			return true
		}
	}
	return false
}

// hostMatches: "reviews" matches reviews, reviews.default and reviews.default.svc.cluster.local.
func hostMatches(host, to string) bool {
	return host != "" && (host == to || (strings.HasPrefix(host, to) && host[len(to)] == '.'))
}

// authorityHost drops the port of an authority ("reviews:9080" → "reviews") without
// allocating.
func authorityHost(a string) string {
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.Contains(a[i:], "]") {
		return a[:i]
	}
	return a
}
