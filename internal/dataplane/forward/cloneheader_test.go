package forward

import (
	"net/http"
	"reflect"
	"testing"
)

// The upstream request's header is a copy the downstream's never sees changes through,
// whether its values sit in the exchange's array or (more than it holds) their own.
func TestCloneHeaderIsACopy(t *testing.T) {
	for _, n := range []int{3, 40} {
		in := http.Header{"Accept": {"*/*"}, "Via": {"a", "b"}, "X-Nil": nil}
		for i := range n {
			in.Add("X-Many", string(rune('a'+i%26)))
		}
		want := in.Clone()
		var x exchange
		h := x.cloneHeader(in)
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("%d values: clone %v, want %v", n, h, want)
		}
		h.Add("Accept", "text/plain") // appending copies: the neighbour's value stays
		h.Add("Via", "c")
		h["X-Many"][0] = "changed"
		x.setHeader(h, "X-Request-Id", "id")
		if !reflect.DeepEqual(in["Accept"], []string{"*/*"}) || !reflect.DeepEqual(in["Via"], []string{"a", "b"}) ||
			in["X-Many"][0] != "a" || in.Get("X-Request-Id") != "" {
			t.Fatalf("%d values: the downstream header changed: %v", n, in)
		}
		if got := h["Via"]; !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
			t.Fatalf("%d values: Via %v", n, got)
		}
	}
}
