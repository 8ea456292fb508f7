package h2client

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves h with net/http's HTTP/2 server (h2c prior knowledge; the code of
// golang.org/x/net/http2's) on an ephemeral loopback port; maxStreams > 0 sets its
// SETTINGS_MAX_CONCURRENT_STREAMS.
func startServer(t testing.TB, maxStreams int, h http.HandlerFunc) string {
	t.Helper()
	srv := &http.Server{Handler: h, Protocols: new(http.Protocols), HTTP2: &http.HTTP2Config{MaxConcurrentStreams: maxStreams}}
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

// roundTripErr sends req and returns the error (closing a response the test did not
// expect).
func roundTripErr(cc *ClientConn, req *http.Request) error {
	resp, err := cc.RoundTrip(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	return err
}

// dial connects a ClientConn to addr, closed by the test's cleanup.
func dial(t testing.TB, addr string, cfg Config) *ClientConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewClientConn(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// fakeServer is a misbehaving peer: it reads the client preface, exchanges SETTINGS and
// hands the framer to script.
func fakeServer(t testing.TB, script func(fr *http2.Framer, c net.Conn)) string {
	t.Helper()
	return upstreamtest.Serve(t, "127.0.0.1", func(c net.Conn, _ int) {
		br := bufio.NewReader(c)
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil {
			return
		}
		fr := http2.NewFramer(c, br)
		fr.ReadMetaHeaders = nil
		if fr.WriteSettings() != nil {
			return
		}
		script(fr, c)
	})
}

// readHeaders reads frames until a HEADERS frame, acknowledging SETTINGS; it returns the
// stream id (0 when the connection ended).
func readHeaders(fr *http2.Framer) uint32 {
	if f := nextHeaders(fr); f != nil {
		return f.StreamID
	}
	return 0
}

// nextHeaders reads frames until a HEADERS frame, acknowledging SETTINGS (nil when the
// connection ended). The frame is valid until the next read.
func nextHeaders(fr *http2.Framer) *http2.HeadersFrame {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return nil
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			return f
		}
	}
}

// drain reads frames until the connection ends.
func drain(fr *http2.Framer) {
	for {
		if _, err := fr.ReadFrame(); err != nil {
			return
		}
	}
}
