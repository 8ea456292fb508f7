package webhook

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Op is one RFC 6902 JSON Patch operation: add, remove or replace.
type Op struct {
	Op    string
	Path  string
	Value any // add and replace only (null is a value)
}

// MarshalJSON writes value for add and replace, even when it is null, and never for remove.
func (o Op) MarshalJSON() ([]byte, error) {
	if o.Op == "remove" {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		}{o.Op, o.Path})
	}
	return json.Marshal(struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}{o.Op, o.Path, o.Value})
}

// CreatePatch returns the JSON Patch turning the JSON document from into to: objects are
// compared key by key, arrays element by element (extra elements added or removed at the
// end), anything else replaced when it differs. Applied to from, the patch gives a
// document equal to to.
func CreatePatch(from, to []byte) ([]Op, error) {
	var a, b any
	if err := json.Unmarshal(from, &a); err != nil {
		return nil, fmt.Errorf("patch: original: %w", err)
	}
	if err := json.Unmarshal(to, &b); err != nil {
		return nil, fmt.Errorf("patch: modified: %w", err)
	}
	var ops []Op
	diff("", a, b, &ops)
	return ops, nil
}

func diff(path string, a, b any, ops *[]Op) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			diffObjects(path, av, bv, ops)
			return
		}
	case []any:
		if bv, ok := b.([]any); ok {
			diffArrays(path, av, bv, ops)
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*ops = append(*ops, Op{Op: "replace", Path: path, Value: b})
	}
}

func diffObjects(path string, a, b map[string]any, ops *[]Op) {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := path + "/" + escapePointer(k)
		av, inA := a[k]
		bv, inB := b[k]
		switch {
		case inA && !inB:
			*ops = append(*ops, Op{Op: "remove", Path: p})
		case !inA && inB:
			*ops = append(*ops, Op{Op: "add", Path: p, Value: bv})
		default:
			diff(p, av, bv, ops)
		}
	}
}

func diffArrays(path string, a, b []any, ops *[]Op) {
	n := min(len(a), len(b))
	for i := range n {
		diff(path+"/"+strconv.Itoa(i), a[i], b[i], ops)
	}
	for i := n; i < len(b); i++ {
		*ops = append(*ops, Op{Op: "add", Path: path + "/" + strconv.Itoa(i), Value: b[i]})
	}
	for i := len(a) - 1; i >= n; i-- { // from the end, so indexes stay valid
		*ops = append(*ops, Op{Op: "remove", Path: path + "/" + strconv.Itoa(i)})
	}
}

// escapePointer escapes a key for a JSON Pointer (RFC 6901): ~ → ~0, / → ~1.
func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}
