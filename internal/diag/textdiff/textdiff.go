// Package textdiff computes line diffs and prints them in unified format, for
// `lucid proxy-status <workload>` (what the control plane would send vs what the proxy
// applied). It is a leaf: it knows nothing of the mesh.
package textdiff

import (
	"fmt"
	"strings"
)

// op is one edit: a line kept (' '), deleted ('-') or inserted ('+').
type op struct {
	kind byte
	line string
}

// lines splits s into lines without their newlines; "" has none.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// edits returns a shortest edit script from a to b (Myers' O(ND) algorithm).
func edits(a, b []string) []op {
	n, m := len(a), len(b)
	maxD := n + m
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	var trace [][]int
	for d := 0; d <= maxD; d++ {
		if d > maxEdits {
			return wholesale(a, b)
		}
		snap := make([]int, len(v))
		copy(snap, v)
		trace = append(trace, snap)
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, a, b, off, d)
			}
		}
	}
	return nil
}

// maxEdits bounds the search (its memory is O(D·(N+M))): texts further apart than this are
// shown as a whole deletion and a whole insertion.
const maxEdits = 2000

func wholesale(a, b []string) []op {
	out := make([]op, 0, len(a)+len(b))
	for _, l := range a {
		out = append(out, op{'-', l})
	}
	for _, l := range b {
		out = append(out, op{'+', l})
	}
	return out
}

func backtrack(trace [][]int, a, b []string, off, d int) []op {
	x, y := len(a), len(b)
	var out []op
	for ; d > 0; d-- {
		v := trace[d]
		k := x - y
		var prevK int
		if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := v[off+prevK]
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x--
			y--
			out = append(out, op{' ', a[x]})
		}
		if x == prevX {
			y--
			out = append(out, op{'+', b[y]})
		} else {
			x--
			out = append(out, op{'-', a[x]})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		out = append(out, op{' ', a[x]})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Unified returns a unified diff of a and b with context lines of context, headed by
// "--- aName" and "+++ bName"; "" when they are equal.
func Unified(aName, bName, a, b string, context int) string {
	al, bl := lines(a), lines(b)
	ops := edits(al, bl)
	changed := false
	for _, o := range ops {
		if o.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", aName, bName)
	// Walk the ops, emitting hunks of changes with their context.
	i := 0
	ai, bi := 0, 0 // line numbers (0-based) before ops[i]
	for i < len(ops) {
		// find next change
		j := i
		for j < len(ops) && ops[j].kind == ' ' {
			j++
		}
		if j == len(ops) {
			break
		}
		// advance counters to j - context
		start := max(j-context, i)
		for k := i; k < start; k++ {
			ai++
			bi++
		}
		// find hunk end: a run of context longer than 2*context ends it
		end := j
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		var na, nb int
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", span(ai, na), span(bi, nb))
		for _, o := range ops[start:end] {
			sb.WriteByte(o.kind)
			sb.WriteString(o.line)
			sb.WriteByte('\n')
			if o.kind != '+' {
				ai++
			}
			if o.kind != '-' {
				bi++
			}
		}
		i = end
	}
	return sb.String()
}

func span(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}
