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
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// Roots are the top-level attribute names an expression may use (Envoy's attribute
// vocabulary); each is a map from attribute name to value.
var Roots = []string{"request", "response", "connection", "source", "destination", "upstream", "xds"}

// MaxLength bounds an expression's text: a filter is a line of configuration, and the
// bound keeps a hostile one from costing the parser much.
const MaxLength = 16 << 10

// MaxCost bounds what one evaluation may cost, in CEL's cost units (about one per
// operation, a tenth of a unit per byte a string function reads). Every request of a
// listener pays for its expressions, so a Telemetry resource must not make each one
// expensive: an expression's worst case, as CEL estimates it for attributes within
// MaxHeaders and MaxValueSize, is checked when it is compiled (scanning every header's
// value costs about 660,000; a comprehension nested in another over the headers,
// hundreds of millions). Attributes past those sizes (a proxy that accepts larger
// requests) are evaluated with CEL's runtime cost tracking, stopped at MaxCost (the
// filter is false, the tag value "unknown"); within them the estimate holds and the
// evaluation is not tracked, which costs several times less (BenchmarkMatch).
const MaxCost = 1_000_000

// The sizes the cost estimate assumes for the attributes: Envoy's default limits on a
// request (100 headers, 60 KiB of them).
const (
	MaxHeaders   = 100      // request.headers, response.headers, response.trailers
	MaxValueSize = 64 << 10 // a string attribute (a header value, a path), and the headers together
	maxRootSize  = 32       // the entries of a root map (request, response, ...)
)

// Bounded is an Activation that can tell whether its attributes are within MaxHeaders
// and MaxValueSize, so that an evaluation need not be cost-tracked; an Activation
// without the method is always tracked.
type Bounded interface {
	WithinBounds() bool
}

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
	Source  string
	prg     cel.Program // for attributes within the estimate's bounds
	tracked cel.Program // the same, stopped at MaxCost
}

// ErrNotBool is returned (wrapped) for a filter whose result is not a boolean.
var ErrNotBool = errors.New("a filter expression must evaluate to a boolean")

// ErrTooCostly is returned (wrapped) for an expression whose estimated worst-case cost is
// over MaxCost.
var ErrTooCostly = errors.New("the expression may cost too much per request")

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
	cost, err := e.EstimateCost(ast, sizeBounds{})
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	if cost.Max > MaxCost {
		return nil, fmt.Errorf("%w: its worst-case cost is %d, over the limit of %d (a comprehension over request.headers nested in another one, or a long regular expression over many values?)", ErrTooCostly, cost.Max, MaxCost)
	}
	prg, err := e.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	tracked, err := e.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(MaxCost))
	if err != nil {
		return nil, errors.New(oneLine(err.Error()))
	}
	return &Expr{Source: src, prg: prg, tracked: tracked}, nil
}

// eval evaluates x, cost-tracked unless act says its attributes are within bounds.
func (x *Expr) eval(act interpreter.Activation) (ref.Val, error) {
	prg := x.tracked
	if b, ok := act.(Bounded); ok && b.WithinBounds() {
		prg = x.prg
	}
	v, _, err := prg.Eval(act)
	return v, err
}

// sizeBounds is the cost estimator's view of the attributes (a checker.CostEstimator):
// the sizes an attribute can have, by its path; CEL's own costs for every call.
type sizeBounds struct{}

func (sizeBounds) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	p := n.Path()
	switch {
	case len(p) == 0: // not an attribute: CEL computes it
		return nil
	case len(p) == 1:
		return &checker.SizeEstimate{Max: maxRootSize}
	case len(p) == 2 && (p[1] == "headers" || p[1] == "trailers"):
		return &checker.SizeEstimate{Max: MaxHeaders}
	}
	return &checker.SizeEstimate{Max: MaxValueSize}
}

func (sizeBounds) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Value evaluates a value expression to its string form (a string as it is, a number or
// boolean as CEL prints it); ok is false on an evaluation error (a cost over MaxCost
// included).
func (x *Expr) Value(act interpreter.Activation) (string, bool) {
	v, err := x.eval(act)
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
// map). An evaluation error (a missing header, a wrong type, a cost over MaxCost) or a
// result that is not a boolean is false, as Envoy's CEL filter treats it: the request is not logged.
func (x *Expr) Match(act interpreter.Activation) bool {
	v, err := x.eval(act)
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
