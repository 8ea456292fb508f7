package forward_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// rawH2KiB is a lean h2c upstream on 127.0.84.3: it answers every request (at its
// END_STREAM) with 200, Content-Length 1024 and 1 KiB, composed once; it parses frame
// headers only and allocates nothing per request, so an allocation count over the proxy
// path is the proxy's. Flow control is the client's to keep generous (h2client's is).
func rawH2KiB(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.84.3:0")
	if err != nil {
		tb.Fatal(err)
	}
	// HEADERS: :status 200 (static index 8), then content-length and content-type as
	// literals without indexing of static names 28 and 31.
	block := append([]byte{0x88, 0x0f, 0x0d, 4}, "1024"...)
	block = append(append(block, 0x0f, 0x10, 10), "text/plain"...)
	answer := frame(nil, http2.FrameHeaders, http2.FlagHeadersEndHeaders, block)
	answer = frame(answer, http2.FrameData, http2.FlagDataEndStream, []byte(strings.Repeat("x", 1024)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRawH2(c, answer)
		}
	}()
	tb.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

// frame appends one HTTP/2 frame (stream id 0; serveRawH2 sets it per answer).
func frame(b []byte, t http2.FrameType, flags http2.Flags, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), byte(t), byte(flags), 0, 0, 0, 0)
	return append(b, payload...)
}

func serveRawH2(c net.Conn, answer []byte) {
	defer c.Close()
	br, bw := bufio.NewReaderSize(c, 64<<10), bufio.NewWriterSize(c, 64<<10)
	if _, err := br.Discard(len(http2.ClientPreface)); err != nil {
		return
	}
	out := append([]byte(nil), answer...)
	headersLen := 9 + int(binary.BigEndian.Uint32(append([]byte{0}, answer[:3]...)))
	_, _ = bw.Write(frame(nil, http2.FrameSettings, 0, nil))
	var hdr [9]byte
	payload := make([]byte, 1<<20)
	for {
		if bw.Buffered() > 0 && br.Buffered() < 9 {
			if bw.Flush() != nil {
				return
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags := http2.FrameType(hdr[3]), http2.Flags(hdr[4])
		id := binary.BigEndian.Uint32(hdr[5:]) & (1<<31 - 1)
		if n > len(payload) {
			return
		}
		if _, err := io.ReadFull(br, payload[:n]); err != nil {
			return
		}
		switch {
		case typ == http2.FrameSettings && !flags.Has(http2.FlagSettingsAck):
			_, _ = bw.Write(frame(hdr[:0:0], http2.FrameSettings, http2.FlagSettingsAck, nil))
		case typ == http2.FramePing && !flags.Has(http2.FlagPingAck):
			ack := [17]byte{0, 0, 8, byte(http2.FramePing), byte(http2.FlagPingAck)}
			copy(ack[9:], payload[:8])
			_, _ = bw.Write(ack[:])
		case (typ == http2.FrameHeaders || typ == http2.FrameData) && flags.Has(http2.FlagDataEndStream):
			binary.BigEndian.PutUint32(out[5:], id)
			binary.BigEndian.PutUint32(out[headersLen+5:], id)
			_, _ = bw.Write(out)
		}
	}
}

// maxH2UpstreamAllocsPerRequest bounds the allocations per request of the h2c path on
// both sides (h2server → forward → pool → h2client), counted over the whole process: 2,
// x/net's Framer in the test's client parsing the answer's HEADERS frame and the test's
// access record copy. The upstream's answer head (its date a literal) comes from
// h2client's block cache; decoded each time it cost 2 more. Under -race, raceAllocs more.
// It guards against regressions; lower it as allocations are removed.
const maxH2UpstreamAllocsPerRequest = 2

// The h2c path with an HTTP/2 upstream allocates at most maxH2UpstreamAllocsPerRequest
// times per request.
func TestH2BothSidesPathAllocations(t *testing.T) {
	h := newHopOn(t, resource.HTTP2, rawH2KiB(t), h2Proxy)
	rc := newRawH2Client(t, strings.TrimPrefix(h.url, "http://"))
	if n, limit := allocsPerRequest(t, func() string { return rc.get(1) }), allocBound(maxH2UpstreamAllocsPerRequest); n > limit {
		t.Fatalf("%.1f allocations per request on the h2c path with an HTTP/2 upstream, want at most %.0f", n, limit)
	}
}

// BenchmarkH2BothSides: h2c requests through h2server → forward → h2client to an h2c
// upstream, 16 in flight; allocs/op are per request.
func BenchmarkH2BothSides(b *testing.B) {
	h := newHopOn(b, resource.HTTP2, rawH2KiB(b), h2Proxy)
	rc := newRawH2Client(b, strings.TrimPrefix(h.url, "http://"))
	if why := rc.get(16); why != "" {
		b.Fatal(why)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n%16 == 0 {
			if why := rc.get(16); why != "" {
				b.Fatal(why)
			}
		}
		n++
	}
}
