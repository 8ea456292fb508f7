// Package tapview is the client side of `lucid tap` and `lucid top`: it opens a proxy's
// tap through the control plane's relay (/debug/tap?workload=…) or straight from a
// proxy's admin API (/tap), decodes the stream (one contract.TapEvent per line) and
// renders it: a line per request for tap, a table by path for top.
//
//	lucid tap/top ─► control plane :15014 /debug/tap ─► proxy admin :15000 /tap ─► tap.Hub
package tapview

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Source says where to read the tap: the control plane's debug address (and the
// workload's name), or a proxy's admin address directly.
type Source struct {
	Debug    string // host:port of the control plane's debug port
	Workload string // <workload> or <workload>.<namespace>
	Admin    string // host:port of a proxy's admin API; when set, Debug and Workload are unused
}

// Filter is what `lucid tap` asks the proxy for; empty fields take everything.
type Filter struct {
	To, Path, Method, Status, Flags, Direction string
	ErrorsOnly                                 bool
	MaxRPS                                     int // 0: the proxy's default (100)
}

// URL is the tap's address for s and f.
func (s Source) URL(f Filter) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("to", f.To)
	set("path", f.Path)
	set("method", f.Method)
	set("status", f.Status)
	set("flags", f.Flags)
	set("direction", f.Direction)
	if f.ErrorsOnly {
		q.Set("errors", "true")
	}
	if f.MaxRPS > 0 {
		q.Set("rps", fmt.Sprint(f.MaxRPS))
	}
	if s.Admin != "" {
		return "http://" + s.Admin + contract.TapPath + "?" + q.Encode()
	}
	q.Set("workload", s.Workload)
	return "http://" + s.Debug + contract.TapRelayPath + "?" + q.Encode()
}

// Open starts the stream. A refusal (unknown workload, bad filter) is returned as an
// error carrying the server's own words.
func Open(ctx context.Context, c *http.Client, s Source, f Filter) (io.ReadCloser, error) {
	u := s.URL(f)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		if s.Admin != "" {
			return nil, fmt.Errorf("open the tap of the proxy at %s: %w", s.Admin, err)
		}
		return nil, fmt.Errorf("open the tap through the control plane at %s: %w", s.Debug, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("tap refused (%d): %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return resp.Body, nil
}

// Read decodes events from r until it ends or each returns an error (returned as is).
func Read(r io.Reader, each func(contract.TapEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var ev contract.TapEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("tap stream, line %d: %w", line, err)
		}
		if err := each(ev); err != nil {
			return err
		}
	}
	return sc.Err()
}
