package tapview

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Printer writes one line per request.
type Printer struct {
	W io.Writer
	// Format is "" (a line: time, direction, method, authority+path, status, flags,
	// duration, upstream and the error's cause), "wide" (also route, cluster, source →
	// destination, request id, the whole explanation) or "json" (the event as received).
	Format string
}

// CheckFormat validates a -o value.
func CheckFormat(f string) error {
	switch f {
	case "", "wide", "json":
		return nil
	}
	return fmt.Errorf("-o %q: want wide or json (or nothing for one short line per request)", f)
}

// Print writes ev.
func (p *Printer) Print(ev contract.TapEvent) error {
	if ev.Skipped > 0 && p.Format != "json" {
		if _, err := fmt.Fprintf(p.W, "# %d matching requests not shown (the proxy's rate limit for this tap; raise it with --max-rps)\n", ev.Skipped); err != nil {
			return err
		}
	}
	if p.Format == "json" {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.W, "%s\n", b)
		return err
	}
	var b strings.Builder
	b.WriteString(ev.Time.Local().Format("15:04:05.000"))
	fmt.Fprintf(&b, " %-8s %-6s %s%s %s %s %s", orDash(ev.Direction), orDash(ev.Method), ev.Authority, ev.Path, status(ev.Status), orDash(ev.Flags), duration(ev.DurationMS))
	if ev.UpstreamHost != "" {
		b.WriteString(" → " + ev.UpstreamHost)
	}
	if p.Format == "wide" {
		fmt.Fprintf(&b, " route=%s cluster=%s %s→%s id=%s", orDash(ev.Route), orDash(ev.UpstreamCluster), orDash(ev.Source), orDash(ev.Destination), orDash(ev.RequestID))
		if ev.Error != "" {
			b.WriteString(" error=" + strconv.Quote(ev.Error))
		}
	} else if ev.Error != "" {
		cause, _, _ := strings.Cut(ev.Error, " (")
		b.WriteString("  " + cause)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(p.W, b.String())
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func status(code int) string {
	if code == 0 {
		return "---"
	}
	return strconv.Itoa(code)
}

func duration(ms float64) string {
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
}
