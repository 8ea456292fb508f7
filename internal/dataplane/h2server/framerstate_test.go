package h2server_test

import (
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// A HEADERS frame that opens a header block (no END_HEADERS) and that the Framer rejects as
// a stream error (padding longer than the frame) still leaves a CONTINUATION due: a whole
// HEADERS frame after it is a connection error (GOAWAY PROTOCOL_ERROR) and its request is
// not served, as when every frame went through the Framer.
func TestHeadersAfterARejectedOpeningFrame(t *testing.T) {
	served := make(chan string, 1)
	s := &h2server.Server{Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		served <- r.URL.Path
	})}
	r := dialRaw(t, serve(t, s))
	// HEADERS on stream 1, PADDED without END_HEADERS, a pad length of 5 in a 1-byte payload.
	if _, err := r.c.Write([]byte{0, 0, 1, byte(http2.FrameHeaders), byte(http2.FlagHeadersPadded), 0, 0, 0, 1, 5}); err != nil {
		t.Fatal(err)
	}
	r.get(3, "/after")
	for {
		f := r.next()
		if f == nil {
			t.Fatal("the connection ended without GOAWAY")
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			t.Fatalf("stream %d answered %s (served %q): a HEADERS frame taken while a CONTINUATION was due", f.StreamID, f.PseudoValue("status"), <-served)
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeProtocol {
				t.Fatalf("GOAWAY code %v, want PROTOCOL_ERROR", f.ErrCode)
			}
			return
		}
	}
}
