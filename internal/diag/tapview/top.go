package tapview

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Top aggregates a tap by method and path (the query dropped), as `lucid top` shows it.
type Top struct {
	rows    map[string]*topRow
	skipped uint64
}

type topRow struct {
	Method, Path  string
	Count, Failed int
	Flags         map[string]int
	Durations     []float64 // the last maxSamples, for percentiles
	next          int
	Worst         string // the newest explanation of a failure
}

// maxSamples bounds the durations kept per row.
const maxSamples = 1000

// NewTop returns an empty aggregate.
func NewTop() *Top { return &Top{rows: map[string]*topRow{}} }

// Add counts one event.
func (t *Top) Add(ev contract.TapEvent) {
	t.skipped += ev.Skipped
	path, _, _ := strings.Cut(ev.Path, "?")
	k := ev.Method + " " + path
	r := t.rows[k]
	if r == nil {
		r = &topRow{Method: ev.Method, Path: path, Flags: map[string]int{}}
		t.rows[k] = r
	}
	r.Count++
	if failed(ev) {
		r.Failed++
		if ev.Error != "" {
			r.Worst, _, _ = strings.Cut(ev.Error, " (")
		}
	}
	if ev.Flags != "" && ev.Flags != "-" {
		for f := range strings.SplitSeq(ev.Flags, ",") {
			r.Flags[f]++
		}
	}
	if len(r.Durations) < maxSamples {
		r.Durations = append(r.Durations, ev.DurationMS)
	} else {
		r.Durations[r.next] = ev.DurationMS
		r.next = (r.next + 1) % maxSamples
	}
}

// Write prints the table, busiest path first, at most limit rows (0: all).
func (t *Top) Write(w io.Writer, limit int) error {
	rows := make([]*topRow, 0, len(t.rows))
	for _, r := range t.rows {
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b *topRow) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.Path, b.Path), strings.Compare(a.Method, b.Method))
	})
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tPATH\tCOUNT\tSUCCESS\tP50\tP99\tFLAGS\tLAST ERROR")
	for _, r := range rows {
		d := slices.Clone(r.Durations)
		slices.Sort(d)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f%%\t%s\t%s\t%s\t%s\n", orDash(r.Method), orDash(r.Path), r.Count,
			100*float64(r.Count-r.Failed)/float64(r.Count), duration(pct(d, 0.5)), duration(pct(d, 0.99)), flags(r.Flags), orDash(r.Worst))
	}
	if t.skipped > 0 {
		fmt.Fprintf(tw, "# %d matching requests not counted (the proxy's rate limit for this tap; raise it with --max-rps)\n", t.skipped)
	}
	return tw.Flush()
}

// failed: a 5xx, no response to an HTTP request, or any response flag. A TCP connection
// (no protocol) has no status.
func failed(ev contract.TapEvent) bool {
	return (ev.Protocol != "" && (ev.Status >= 500 || ev.Status == 0)) || (ev.Flags != "" && ev.Flags != "-")
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func flags(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}
