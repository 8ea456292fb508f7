package h2client

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

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

// listen accepts on an ephemeral loopback port and runs serve for each connection; the
// cleanup closes the listener and every connection and waits for serve to return.
func listen(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); serve(c) }()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
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
	return listen(t, func(c net.Conn) {
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
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return 0
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			return f.StreamID
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
