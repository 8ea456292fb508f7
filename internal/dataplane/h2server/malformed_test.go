package h2server_test

import (
	"runtime"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// A malformed request (here a Host field that disagrees with :authority) is a stream
// error: the connection goes on. Nothing of the refused stream may stay behind: its
// context hangs on the connection's only once the head is accepted (newStream). Before,
// each refused stream, header map included, stayed on the connection's context until the
// connection ended: a client sending malformed requests on one connection grew the
// proxy's memory without bound.
func TestMalformedStreamsAreNotKeptByTheConnection(t *testing.T) {
	s := &h2server.Server{Handler: okHandler()}
	r := dialRaw(t, serve(t, s))

	const n = 8000
	// Warm up (the connection's caches, the encoder's table), then measure.
	id := uint32(1)
	send := func(count int) {
		for range count {
			r.headers(id, true, ":method", "GET", ":scheme", "http", ":authority", "a.test", ":path", "/",
				"host", "b.test", "x-some-field", "some value")
			id += 2
		}
		r.get(id, "/ok")
		if status, _ := r.answer(id); status != "200" {
			t.Fatalf("a valid request after the malformed ones: status %q", status)
		}
		id += 2
	}
	send(100)
	before := heapInUse()
	send(n)
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("heap grew %d KiB over %d malformed requests", grown>>10, n)
	if grown > 2<<20 {
		t.Errorf("the heap grew by %d KiB (%d bytes per malformed request) while the connection stayed open: "+
			"each malformed request's stream is kept by the connection's context", grown>>10, grown/n)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
