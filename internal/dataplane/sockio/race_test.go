//go:build race

package sockio

import (
	"io"
	"net"
	"testing"
)

// What a goroutine did before it wrote to a socket is seen by the goroutine that read the
// bytes, raw or through net on either side, as the race detector sees it for net's reads
// and writes: without the annotations it reports a race on the handler's answer.
func TestRaceDetectorSeesTheSocketAsSynchronisation(t *testing.T) {
	raw := func(s *Conn, _ net.Conn) io.ReadWriter { return s }
	viaNet := func(_ *Conn, peer net.Conn) io.ReadWriter { return peer }
	rawPeer := func(_ *Conn, peer net.Conn) io.ReadWriter { return Open(peer) }
	for _, tc := range []struct {
		name        string
		writer, rdr func(*Conn, net.Conn) io.ReadWriter
	}{
		{"raw write, net read", raw, viaNet},
		{"net write, raw read", viaNet, raw},
		{"raw write, raw read", rawPeer, raw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, s, peer := pair(t)
			w, r := tc.writer(s, peer), tc.rdr(s, peer)
			answer := ""
			go func() {
				answer = "ok"
				_, _ = w.Write([]byte("x"))
			}()
			if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if answer != "ok" {
				t.Fatalf("answer = %q after its bytes arrived", answer)
			}
		})
	}
}
