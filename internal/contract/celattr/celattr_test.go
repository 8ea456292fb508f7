package celattr

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/cel-go/interpreter"
)

type attrs map[string]any

func (a attrs) ResolveName(n string) (any, bool) { v, ok := a[n]; return v, ok }
func (a attrs) Parent() interpreter.Activation   { return nil }

func TestCompileFilterAndMatch(t *testing.T) {
	req := attrs{
		"response":   map[string]any{"code": int64(503), "flags": int64(2)},
		"request":    map[string]any{"headers": map[string]string{"x-user": "jason"}, "url_path": "/reviews/v1beta3"},
		"connection": map[string]any{"mtls": true},
	}
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{"response.code >= 500", true},
		{"response.code >= 400 && response.code < 500", false},
		{"request.headers['x-user'] == 'jason'", true},
		{"connection.mtls && request.url_path.contains('v1beta3')", true},
		{"request.headers['x-missing'] == 'a'", false}, // an evaluation error: not logged
		{"has(request.headers.x_missing)", false},
		{"xds.cluster_name == 'a'", false}, // a root the request lacks: error, false
		{"response.code", false},           // dyn that is not a bool at run time
	} {
		x, err := CompileFilter(tc.expr)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", tc.expr, err)
		}
		if got := x.Match(req); got != tc.want {
			t.Errorf("%q = %v; want %v", tc.expr, got, tc.want)
		}
	}
}

func TestCompileFilterErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"", "may not be empty"},
		{"response.code >=", "1:17: Syntax error"},
		{"foo.bar == 1", "undeclared reference to 'foo'"},
		{"1 + 2", "must evaluate to a boolean, not int"},
		{"'a'", "not string"},
		{strings.Repeat("a", MaxLength+1), "at most"},
	} {
		_, err := CompileFilter(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileFilter(%.20q) = %v; want an error with %q", tc.expr, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("CompileFilter(%.20q): error on several lines: %q", tc.expr, err)
		}
	}
	if _, err := CompileFilter("1"); !errors.Is(err, ErrNotBool) {
		t.Errorf("CompileFilter(1) = %v; want ErrNotBool", err)
	}
}

// FuzzCompileFilter: any text compiles (as a filter and as a tag value) or fails with an
// error on one line, and what compiles evaluates without panicking.
func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{"response.code >= 500", "request.headers['x'] == 'y'", "connection.mtls",
		"[1,2].all(x, x > 0)", "response.code >=", "'a' + 'b' == 'ab'", "size(request.headers) > 2", "dyn(1) == 1"} {
		f.Add(s)
	}
	req := attrs{"response": map[string]any{"code": int64(200)}, "request": map[string]any{"headers": map[string]string{"x": "y"}}}
	f.Fuzz(func(t *testing.T, src string) {
		if v, err := CompileValue(src); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("error on several lines: %q", err)
		} else if err == nil {
			_, _ = v.Value(req)
		}
		x, err := CompileFilter(src)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error on several lines: %q", err)
			}
			return
		}
		_ = x.Match(req)
	})
}

func TestCompileValue(t *testing.T) {
	req := attrs{"request": map[string]any{"host": "reviews:9080", "headers": map[string]string{"x-team": "books"}},
		"response": map[string]any{"code": int64(503)}}
	for _, tc := range []struct{ expr, want string }{
		{"request.host", "reviews:9080"},
		{"'literal'", "literal"},
		{"request.headers['x-team']", "books"},
		{"response.code", "503"},
		{"response.code >= 500", "true"},
	} {
		x, err := CompileValue(tc.expr)
		if err != nil {
			t.Fatalf("CompileValue(%q): %v", tc.expr, err)
		}
		if got, ok := x.Value(req); !ok || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.expr, got, ok, tc.want)
		}
	}
	x, _ := CompileValue("request.headers['x-missing']")
	if _, ok := x.Value(req); ok {
		t.Error("a missing header evaluated")
	}
	if _, err := CompileValue("request.host +"); err == nil {
		t.Error("a syntax error compiled")
	}
}

// TestCostLimit: an expression whose worst case (100 headers, 64 KiB values) costs more
// than MaxCost per request is refused when compiled, with the reason; what Istio users
// write passes; and an evaluation that goes over the limit anyway (more headers than the
// estimate assumes) is stopped: the filter is false, the value unknown.
func TestCostLimit(t *testing.T) {
	for _, ok := range []string{
		"response.code >= 500 && request.headers['x-user'] in ['a', 'b']",
		"request.url_path.matches('^/api/v[0-9]+/.*$')",
		"request.headers.exists(k, request.headers[k].contains('secret'))",
	} {
		if _, err := CompileFilter(ok); err != nil {
			t.Errorf("CompileFilter(%q): %v", ok, err)
		}
	}
	for _, costly := range []string{
		"request.headers.all(a, request.headers.all(b, a + b != ''))",
		"request.headers.exists(k, request.headers.exists(v, request.headers[v].contains(k)))",
	} {
		_, err := CompileFilter(costly)
		if !errors.Is(err, ErrTooCostly) || !strings.Contains(err.Error(), "over the limit of 1000000") {
			t.Errorf("CompileFilter(%q) = %v; want ErrTooCostly with the figures", costly, err)
		}
	}
	if _, err := CompileValue("size(request.headers.map(a, request.headers.map(b, a + b)))"); !errors.Is(err, ErrTooCostly) {
		t.Errorf("CompileValue of a costly expression: %v", err)
	}

	// At run time: 2000 headers of 4 KiB each (past the estimate's 100) cost about
	// 800,000 units to scan; twice that is over the limit.
	const scan = "request.headers.exists(k, request.headers[k].contains('never') || request.headers[k].endsWith('never'))"
	x, err := CompileFilter("!" + "(" + scan + ")")
	if err != nil {
		t.Fatal(err)
	}
	v, err := CompileValue("string(" + scan + ")")
	if err != nil {
		t.Fatal(err)
	}
	small := attrs{"request": map[string]any{"headers": map[string]string{"a": "b"}}}
	if !x.Match(small) {
		t.Fatal("a few headers: the filter is false")
	}
	if s, ok := v.Value(small); !ok || s != "false" {
		t.Fatalf("a few headers: value %q %v", s, ok)
	}
	many := map[string]string{}
	for i := range 2000 {
		many[strings.Repeat("h", 8)+string(rune('a'+i%26))+strings.Repeat("x", i/26)] = strings.Repeat("v", 4<<10)
	}
	big := attrs{"request": map[string]any{"headers": many}}
	if x.Match(big) {
		t.Error("an evaluation over the cost limit matched; want it stopped (false)")
	}
	if s, ok := v.Value(big); ok {
		t.Errorf("an evaluation over the cost limit gave the value %q; want none", s)
	}
}

// boundedAttrs are attributes that say they are within the estimate's bounds.
type boundedAttrs struct{ attrs }

func (boundedAttrs) WithinBounds() bool { return true }

// BenchmarkMatch is one filter evaluated against a request's attributes: within the
// cost estimate's bounds (not tracked), and past them (CEL's runtime cost tracking).
func BenchmarkMatch(b *testing.B) {
	x, err := CompileFilter("response.code >= 500 && request.headers['x-user'] == 'jason'")
	if err != nil {
		b.Fatal(err)
	}
	req := attrs{
		"response": map[string]any{"code": int64(503)},
		"request":  map[string]any{"headers": map[string]string{"x-user": "jason"}},
	}
	for name, act := range map[string]interpreter.Activation{"bounded": boundedAttrs{req}, "tracked": req} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !x.Match(act) {
					b.Fatal("no match")
				}
			}
		})
	}
}
