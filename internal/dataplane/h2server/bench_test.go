package h2server_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// BenchmarkServer compares h2server with net/http's HTTP/2 server (h2c) on the same small
// handler: "seq" is one request at a time with x/net's client; "pipelined" keeps 16
// streams in flight on one connection from a lean hand-driven client, so the figures are
// mostly the server's.
func BenchmarkServer(b *testing.B) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello, world")
	})
	servers := []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"h2server", func(b *testing.B) string { b.Helper(); return serve(b, &h2server.Server{Handler: handler}) }},
		{"nethttp", func(b *testing.B) string { b.Helper(); return serveNetHTTP(b, handler) }},
	}
	for _, sv := range servers {
		b.Run(sv.name+"/seq", func(b *testing.B) {
			addr := sv.start(b)
			c := h2c(b)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				resp, err := c.Get("http://" + addr + "/")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
		b.Run(sv.name+"/pipelined", func(b *testing.B) {
			addr := sv.start(b)
			b.ReportAllocs()
			pipelined(b, addr, 16)
		})
	}
}

func serveNetHTTP(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, Protocols: new(http.Protocols)}
	srv.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String()
}

// pipelined sends b.N GETs on one connection, depth at a time, reading the answers as they
// come.
func pipelined(b *testing.B, addr string, depth int) {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bw := bufio.NewWriterSize(c, 64<<10)
	fr := http2.NewFramer(bw, bufio.NewReaderSize(c, 64<<10))
	fr.SetReuseFrames()
	_, _ = io.WriteString(bw, http2.ClientPreface)
	_ = fr.WriteSettings()
	_ = fr.WriteWindowUpdate(0, 1<<30)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	id := uint32(1)
	send := func() {
		hb.Reset()
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "bench.test"}, {":path", "/"}, {"user-agent", "bench"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		id += 2
	}
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	sent, done := 0, 0
	b.ResetTimer()
	for done < b.N {
		if sent-done <= depth/2 && sent < b.N { // refill in batches, as h2load does
			for sent < b.N && sent-done < depth {
				send()
				sent++
			}
			_ = bw.Flush()
		}
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamEnded() {
				done++
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				done++
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			b.Fatalf("stream %d reset: %v", f.StreamID, f.ErrCode)
		case *http2.GoAwayFrame:
			b.Fatalf("GOAWAY %v", f.ErrCode)
		}
	}
}
