package h2client

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A HEADERS frame that opens a header block (no END_HEADERS) and that the Framer rejects as
// a stream error (padding longer than the frame) still leaves a CONTINUATION due: the whole
// HEADERS frame after it breaks the protocol, so no answer is taken from it and the
// connection fails, as when every frame went through the Framer.
func TestHeadersAfterARejectedOpeningFrame(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		first, second := readHeaders(fr), readHeaders(fr)
		// HEADERS, PADDED without END_HEADERS, a pad length of 5 in a 1-byte payload.
		bad := []byte{0, 0, 1, byte(http2.FrameHeaders), byte(http2.FlagHeadersPadded), 0, 0, 0, byte(first), 5}
		_, _ = c.Write(bad)
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: second, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)) }()
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatal("an answer taken from a HEADERS frame sent while a CONTINUATION was due")
		}
	}
}

// The CONTINUATION of a HEADERS frame the Framer rejected as a stream error belongs to
// that frame's stream: it does not end up in the block read before it, another stream's,
// which would then take it for malformed trailers and fail.
func TestContinuationOfARejectedFrameLeavesOtherStreams(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		a := readHeaders(fr)
		_ = writeResponse(fr, a, "200", false)
		_ = fr.WriteData(a, false, []byte("abc"))
		b := readHeaders(fr)
		// HEADERS on b, PADDED without END_HEADERS, a pad length of 5 in a 1-byte payload;
		// then its block's end.
		_, _ = c.Write([]byte{0, 0, 1, byte(http2.FrameHeaders), byte(http2.FlagHeadersPadded), 0, 0, 0, byte(b), 5})
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		_ = enc.WriteField(hpack.HeaderField{Name: "x-t", Value: "v"})
		_ = fr.WriteContinuation(b, true, buf.Bytes())
		_ = fr.WriteData(a, true, []byte("def"))
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/a", nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/b", nil)); err == nil {
		t.Error("stream b answered, though its HEADERS frame was rejected")
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || string(body) != "abcdef" {
		t.Fatalf("stream a: body %q, error %v; want %q", body, err, "abcdef")
	}
}
