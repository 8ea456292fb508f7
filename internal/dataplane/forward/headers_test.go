package forward

import (
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// removeHopHeaders drops the hop-by-hop fields and every field Connection names, the
// common options included ("close" names a field Close too), without allocating for the
// options nearly every message carries.
func TestRemoveHopHeaders(t *testing.T) {
	h := http.Header{
		"Connection": {"close, X-A", "Keep-Alive"},
		"Close":      {"x"},
		"X-A":        {"1"},
		"Keep-Alive": {"timeout=5"},
		"Te":         {"trailers"},
		"Other":      {"y"},
	}
	removeHopHeaders(h, false)
	if len(h) != 1 || h.Get("Other") != "y" {
		t.Fatalf("after removing hop-by-hop fields: %v, want only Other", h)
	}
	base := http.Header{"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Content-Type": {"text/plain"}}
	h = http.Header{}
	if n := testing.AllocsPerRun(100, func() {
		for k, v := range base {
			h[k] = v
		}
		removeHopHeaders(h, false)
	}); n != 0 {
		t.Fatalf("removeHopHeaders allocates %v times for Connection: keep-alive", n)
	}
}

// Every hop-by-hop field goes (net/http/httputil's list), in a small map and a large one;
// a message without any keeps all its fields, and "te: trailers" stays when asked for.
func TestRemoveHopHeadersEveryName(t *testing.T) {
	hopHeaders := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
	for _, extra := range []int{0, 20} {
		for _, hop := range hopHeaders {
			h := http.Header{hop: {"v"}, "Content-Type": {"text/plain"}}
			for i := range extra {
				h["X-Extra-"+strconv.Itoa(i)] = []string{"e"}
			}
			removeHopHeaders(h, false)
			if _, ok := h[hop]; ok || len(h) != 1+extra {
				t.Errorf("%d other fields: %s not removed, or other fields lost: %v", extra, hop, h)
			}
		}
		h := http.Header{"Te": {"trailers, deflate"}, "Content-Type": {"application/grpc"}}
		for i := range extra {
			h["X-Extra-"+strconv.Itoa(i)] = []string{"e"}
		}
		removeHopHeaders(h, true)
		if got := h["Te"]; len(got) != 1 || got[0] != "trailers" || len(h) != 2+extra {
			t.Errorf("%d other fields: te %q, %d fields; want trailers, %d", extra, got, len(h), 2+extra)
		}
	}
	// A TE the connection names is hop-by-hop through and through: "trailers" goes too.
	named := http.Header{"Connection": {"TE"}, "Te": {"trailers"}, "Content-Type": {"application/grpc"}}
	removeHopHeaders(named, true)
	if _, ok := named["Te"]; ok || len(named) != 1 {
		t.Errorf("Connection: TE, TE: trailers, keeping trailers: %v; want only Content-Type", named)
	}
	plain := http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"3"}, "Server": {"nginx"}}
	removeHopHeaders(plain, false)
	if len(plain) != 3 {
		t.Fatalf("a message without hop-by-hop fields lost some: %v", plain)
	}
}

// removeHopFields, given the map's hop-by-hop keys (as the pool lists them for its plain
// answers), leaves the map as removeHopHeaders' walk does: the Connection options, "te:
// trailers" and a key listed twice included.
func TestRemoveHopFieldsIsRemoveHopHeaders(t *testing.T) {
	names := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Content-Type", "Close", "X-A", "X-B"}
	values := map[string][]string{
		"Connection": {"keep-alive", "close", "X-A", "close, x-b", "Keep-Alive, TE", "te"},
		"Te":         {"trailers", "deflate", "trailers, deflate"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		h := http.Header{}
		for _, k := range names {
			if rng.IntN(3) == 0 {
				continue
			}
			v := "v"
			if vs := values[k]; vs != nil {
				v = vs[rng.IntN(len(vs))]
			}
			h[k] = []string{v}
		}
		var hop []string
		for _, k := range names {
			if _, ok := h[k]; ok && http1.HopByHop(k) {
				hop = append(hop, k)
				if rng.IntN(4) == 0 {
					hop = append(hop, k) // a name the head had twice
				}
			}
		}
		keep := i%2 == 0
		want := h.Clone()
		removeHopHeaders(want, keep)
		got := h.Clone()
		removeHopFields(got, hop, keep)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%v with hop-by-hop keys %q (keep te: trailers %v): %v, the walk gives %v", h, hop, keep, got, want)
		}
	}
}
