// Package celattr is the CEL environment Istio's Telemetry expressions are written in:
// Envoy's request attributes (request.*, response.*, connection.*, source.*,
// destination.*, upstream.*, xds.*), each top-level name a map. The control plane
// compiles an accessLogging filter.expression with it to validate the Telemetry
// resource (the error names the field); the data plane compiles the same text from the
// access log's CEL filter (a failure NACKs the listener) and evaluates it per request
// with the attributes of that request (internal/dataplane/accesslog).
//
// It is a leaf shared by both planes, like the rest of internal/contract, and imports
// nothing of Lucid's; only github.com/google/cel-go.
package celattr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// Roots are the top-level attribute names an expression may use (Envoy's attribute
// vocabulary); each is a map from attribute name to value.
var Roots = []string{"request", "response", "connection", "source", "destination", "upstream", "xds"}

// MaxLength bounds an expression's text: a filter is a line of configuration, and the
// bound keeps a hostile one from costing the parser much.
const MaxLength = 16 << 10

// env is the CEL environment: every root declared as map(string, dyn), so that
// response.code >= 500 and request.headers['x-user'] type-check and any value is
// checked when the request is evaluated, as Envoy does.
var env = sync.OnceValues(func() (*cel.Env, error) {
	opts := make([]cel.EnvOption, 0, len(Roots))
	for _, r := range Roots {
		opts = append(opts, cel.Variable(r, cel.MapType(cel.StringType, cel.DynType)))
	}
	return cel.NewEnv(opts...)
})

// Expr is a compiled expression. Safe for concurrent use.
type Expr struct {
	Source string
	prg    cel.Program
}

// ErrNotBool is returned (wrapped) for a filter whose result is not a boolean.
var ErrNotBool = errors.New("a filter expression must evaluate to a boolean")

// CompileFilter compiles an access-log filter: a boolean expression over the attributes.
// The error is CEL's, on one line ("1:10: Syntax error: ..."), for the caller to put
// after the field it names.
func CompileFilter(src string) (*Expr, error) {
	return compile(src, true)
}

// CompileValue compiles a metric tag's value expression (Telemetry metrics
// tagOverrides[].value): any expression over the attributes, its result rendered as a
// string.
func CompileValue(src string) (*Expr, error) {
	return compile(src, false)
}

func compile(src string, boolean bool) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("expression may not be empty")
	}
	if len(src) > MaxLength {
		return nil, fmt.Errorf("expression is %d bytes; at most %d", len(src), MaxLength)
	}
	e, err := env()
	if err != nil {
		return nil, err
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		return nil, errors.New(oneLine(iss.Err().Error()))
	}
	if t := ast.OutputType(); boolean && !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, fmt.Errorf("%w, not %s", ErrNotBool, t)
	}
	prg, err := e.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	return &Expr{Source: src, prg: prg}, nil
}

// Value evaluates a value expression to its string form (a string as it is, a number or
// boolean as CEL prints it); ok is false on an evaluation error.
func (x *Expr) Value(act interpreter.Activation) (string, bool) {
	v, _, err := x.prg.Eval(act)
	if err != nil || types.IsError(v) {
		return "", false
	}
	if s, ok := v.Value().(string); ok {
		return s, true
	}
	s, err := v.ConvertToNative(reflect.TypeFor[string]())
	if err == nil {
		return s.(string), true
	}
	return fmt.Sprint(v.Value()), true
}

// Match evaluates a filter against the attributes act resolves (a root name to its
// map). An evaluation error (a missing header, a wrong type) or a result that is not a
// boolean is false, as Envoy's CEL filter treats it: the request is not logged.
func (x *Expr) Match(act interpreter.Activation) bool {
	v, _, err := x.prg.Eval(act)
	if err != nil {
		return false
	}
	b, ok := v.Value().(bool)
	return ok && b
}

// oneLine turns CEL's multi-line report ("ERROR: <input>:1:5: ...\n | expr\n | ....^")
// into its message lines joined with "; ".
func oneLine(s string) string {
	var msgs []string
	for l := range strings.SplitSeq(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "|") {
			continue
		}
		l = strings.TrimPrefix(l, "ERROR: ")
		l = strings.TrimPrefix(l, "<input>:")
		msgs = append(msgs, l)
	}
	return strings.Join(msgs, "; ")
}
