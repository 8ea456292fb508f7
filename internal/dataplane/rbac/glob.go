package rbac

import (
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// strMatcher is a compiled type.matcher.v3.StringMatcher. Istio writes most of its regexes
// as literals separated by ".*" or ".+" (".*/ns/foo/.*" for a namespace, ".+" for "*",
// "spiffe://.*-suffix"); those run as a glob, an order of magnitude faster than regexp.
type strMatcher struct {
	sm   *resource.StringMatcher
	glob *glob // non-nil: sm's regex as a glob
}

func compileString(sm *resource.StringMatcher) strMatcher {
	out := strMatcher{sm: sm}
	if sm.Kind == resource.MatchRegex && sm.Regex != nil {
		out.glob = compileGlob(sm.Regex)
	}
	return out
}

func (m *strMatcher) match(v string) bool {
	if m.glob != nil {
		return m.glob.match(v)
	}
	return route.MatchString(m.sm, v)
}

// glob is a full-match pattern of literals and gaps of any characters but '\n' (RE2's
// "." without the s flag), each gap at least min characters long.
type glob struct {
	lits []string // the literals, in order
	// gaps[i] is the gap before lits[i]; gaps[len(lits)] the one after the last literal.
	// A gap of -1 is none (the literals touch, or the pattern is anchored there).
	gaps []int
}

// compileGlob recognises an anchored regex "^(?:X)$" whose X is a concatenation of
// literals, ".*" and ".+"; nil for anything else.
func compileGlob(re *regexp.Regexp) *glob {
	src := re.String()
	if !strings.HasPrefix(src, "^(?:") || !strings.HasSuffix(src, ")$") {
		return nil
	}
	ast, err := syntax.Parse(src[len("^(?:"):len(src)-len(")$")], syntax.Perl)
	if err != nil {
		return nil
	}
	ast = ast.Simplify()
	items := []*syntax.Regexp{ast}
	if ast.Op == syntax.OpConcat {
		items = ast.Sub
	}
	g := &glob{gaps: []int{-1}}
	addGap := func(n int) {
		last := &g.gaps[len(g.gaps)-1]
		if *last < 0 {
			*last = 0
		}
		*last += n
	}
	for _, it := range items {
		switch {
		case it.Op == syntax.OpLiteral && it.Flags&syntax.FoldCase == 0:
			lit := string(it.Rune)
			if strings.ContainsRune(lit, '\n') {
				return nil
			}
			g.lits = append(g.lits, lit)
			g.gaps = append(g.gaps, -1)
		case it.Op == syntax.OpStar && it.Sub[0].Op == syntax.OpAnyCharNotNL:
			addGap(0)
		case it.Op == syntax.OpPlus && it.Sub[0].Op == syntax.OpAnyCharNotNL:
			addGap(1)
		case it.Op == syntax.OpEmptyMatch:
		default:
			return nil
		}
	}
	return g
}

// match reports whether v matches the whole pattern: the first literal at the start
// unless a gap comes first, the last at the end unless a gap comes last, the others at
// their leftmost place after the previous one (which is enough, gaps being unbounded).
func (g *glob) match(v string) bool {
	if strings.IndexByte(v, '\n') >= 0 {
		return false
	}
	pos := 0
	for i, lit := range g.lits {
		gap := g.gaps[i]
		switch {
		case gap < 0:
			if !strings.HasPrefix(v[pos:], lit) {
				return false
			}
		case i == len(g.lits)-1 && g.gaps[i+1] < 0:
			// The last literal ends the string.
			start := len(v) - len(lit)
			if start < pos+gap || !strings.HasSuffix(v, lit) {
				return false
			}
			pos = start
		default:
			if pos+gap > len(v) {
				return false
			}
			j := strings.Index(v[pos+gap:], lit)
			if j < 0 {
				return false
			}
			pos += gap + j
		}
		pos += len(lit)
	}
	last := g.gaps[len(g.lits)]
	if last < 0 {
		return pos == len(v)
	}
	return len(v)-pos >= last
}
