package tracing

import (
	"fmt"
	"net/http"
	"testing"
)

const uuid4 = "0b8d1f0e-5c3a-4d2b-9e1f-2a3b4c5d6e7f"

func withNibble(id string, c byte) string {
	b := []byte(id)
	b[versionNibble] = c
	return string(b)
}

func TestDecide(t *testing.T) {
	none := Sampling{Random: 0, Client: 100, Overall: 100}
	all := Sampling{Random: 100, Client: 100, Overall: 100}
	for _, tc := range []struct {
		name     string
		h        http.Header
		s        Sampling
		internal bool
		want     Reason
		nibble   byte
	}{
		{"nothing chosen", hdr("x-request-id", uuid4), none, true, NotTraceable, '4'},
		{"random 100 %", hdr("x-request-id", uuid4), all, true, Sampled, '9'},
		{"reason carried from the previous hop", hdr("x-request-id", withNibble(uuid4, '9')), none, true, Sampled, '9'},
		{"forced reason carried", hdr("x-request-id", withNibble(uuid4, 'a')), none, false, ServerForced, 'a'},
		{"x-client-trace-id", hdr("x-request-id", uuid4, "x-client-trace-id", "mine"), none, false, ClientForced, 'b'},
		{"x-client-trace-id outside client sampling", hdr("x-request-id", uuid4, "x-client-trace-id", "mine"), Sampling{Client: 0, Overall: 100}, false, NotTraceable, '4'},
		{"x-envoy-force-trace from a mesh peer", hdr("x-request-id", uuid4, "x-envoy-force-trace", "true"), none, true, ServerForced, 'a'},
		{"x-envoy-force-trace from outside is ignored", hdr("x-request-id", uuid4, "x-envoy-force-trace", "true"), none, false, NotTraceable, '4'},
		{"overall sampling 0 cuts even forced", hdr("x-request-id", uuid4, "x-client-trace-id", "mine"), Sampling{Client: 100, Overall: 0}, false, NotTraceable, '4'},
		{"overall sampling 0 clears a carried reason", hdr("x-request-id", withNibble(uuid4, '9')), Sampling{Overall: 0}, false, NotTraceable, '4'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.h, tc.s, tc.internal); got != tc.want {
				t.Fatalf("reason %v, want %v", got, tc.want)
			}
			if id := tc.h.Get("X-Request-Id"); id[versionNibble] != tc.nibble {
				t.Fatalf("x-request-id %s: trace reason digit %c, want %c", id, id[versionNibble], tc.nibble)
			}
		})
	}
	t.Run("a request id that is not a UUID is left alone", func(t *testing.T) {
		h := hdr("x-request-id", "my-own-id")
		if got := Decide(h, all, true); got != Sampled || h.Get("X-Request-Id") != "my-own-id" {
			t.Fatalf("reason %v, id %q", got, h.Get("X-Request-Id"))
		}
	})
}

// TestDecideIsStableAcrossHops checks that random sampling hashes the request id: two
// proxies that see the same request (with the id as the first hop left it) agree, and
// about the configured share of requests is sampled.
func TestDecideIsStableAcrossHops(t *testing.T) {
	s := Sampling{Random: 10, Client: 100, Overall: 100}
	sampled := 0
	const n = 20000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%08x-5c3a-4d2b-9e1f-2a3b4c5d6e7f", uint32(i)*2654435761)
		first := hdr("x-request-id", id)
		r1 := Decide(first, s, true)
		// The second hop sees what the first one sent, but with its own 0 % sampling:
		// the packed reason still decides.
		second := hdr("x-request-id", first.Get("X-Request-Id"))
		if r2 := Decide(second, Sampling{Client: 100, Overall: 100}, true); r2 != r1 {
			t.Fatalf("id %s: first hop %v, second hop %v", id, r1, r2)
		}
		// A third proxy with the same sampling on the original id agrees too.
		if r3 := Decide(hdr("x-request-id", id), s, true); r3 != r1 {
			t.Fatalf("id %s: not stable: %v then %v", id, r1, r3)
		}
		if r1 == Sampled {
			sampled++
		}
	}
	if sampled < n*8/100 || sampled > n*12/100 {
		t.Fatalf("%d of %d sampled at 10 %%", sampled, n)
	}
}
