package h2server_test

import (
	"bytes"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// A busy connection that sends small answers holds small write buffers: its memory is
// measured with every connection kept busy (a stream left open, so none gives its buffers
// back), ten 1 KiB answers each. Connections that send a body in 16 KiB frames take
// large buffers, and the bodies arrive whole.
func TestWriteBuffersFollowTheAnswers(t *testing.T) {
	release := make(chan struct{})
	small := bytes.Repeat([]byte("s"), 1<<10)
	large := bytes.Repeat([]byte("L"), 60<<10) // within the client's initial windows
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hold":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-release
		case "/large":
			_, _ = w.Write(large)
		default:
			_, _ = w.Write(small)
		}
	})}
	addr := serve(t, s)
	defer close(release)

	const conns, answers = 40, 10
	// perConn opens conns busy connections, each answering path answers times, and
	// returns the heap they hold, per connection.
	perConn := func(path string, want []byte) int64 {
		t.Helper()
		before := heapInUse()
		for range conns {
			r := dialRaw(t, addr)
			r.get(1, "/hold")
			if status, _ := r.answer(1); status != "200" {
				t.Fatalf("/hold: status %q", status)
			}
			if err := r.fr.WriteWindowUpdate(0, answers*uint32(len(want))); err != nil { // the connection's window for all answers
				t.Fatal(err)
			}
			for i := range answers {
				r.get(uint32(3+2*i), path)
			}
			got := map[uint32][]byte{}
			for ended := 0; ended < answers; {
				f := r.next()
				if f == nil {
					t.Fatal("connection ended before its answers")
				}
				if d, ok := f.(*http2.DataFrame); ok {
					got[d.StreamID] = append(got[d.StreamID], d.Data()...)
					if d.StreamEnded() {
						ended++
					}
				}
			}
			for id, b := range got {
				if !bytes.Equal(b, want) {
					t.Fatalf("%s on stream %d: %d bytes, want %d", path, id, len(b), len(want))
				}
			}
		}
		return (int64(heapInUse()) - int64(before)) / conns
	}
	smallConn := perConn("/small", small)
	largeConn := perConn("/large", large)
	t.Logf("heap per busy connection: %d KiB with small answers, %d KiB with 60 KiB ones", smallConn>>10, largeConn>>10)
	// Both include the test's own client. Two 64 KiB buffers for every connection would be
	// 128 KiB alone.
	if smallConn > 96<<10 {
		t.Errorf("a busy connection with small answers holds %d KiB; want under 96 (small write buffers)", smallConn>>10)
	}
	if largeConn-smallConn < 48<<10 {
		t.Errorf("a connection sending 16 KiB frames holds %d KiB more than one with small answers; want at least 48 (large write buffers)",
			(largeConn-smallConn)>>10)
	}
}
