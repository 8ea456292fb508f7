package forward_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// The h2c proxy path as the proxy's listeners serve it: a raw HTTP/2 client → h2server
// (or net/http's HTTP/2 server) → Forwarder → pool → a raw HTTP/1.1 upstream. Client and
// upstream are lean, so the allocations counted are mostly the proxy's.

func h2Proxy(tb testing.TB, addr string, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &h2server.Server{Handler: h, IdleTimeout: time.Hour, ConnContext: withAddrs}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.ServeConn(c)
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if s.Shutdown(ctx) != nil {
			_ = s.Close()
		}
	})
	return ln.Addr().String()
}

func netHTTPH2Proxy(tb testing.TB, addr string, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour, Protocols: new(http.Protocols), ConnContext: withAddrs}
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// rawH2Client sends GETs on one h2c connection, depth at a time, and reads the answers
// without decoding their heads.
type rawH2Client struct {
	bw   *bufio.Writer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	id   uint32
}

func newRawH2Client(tb testing.TB, addr string) *rawH2Client {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	rc := &rawH2Client{bw: bufio.NewWriterSize(c, 16<<10), id: 1}
	rc.fr = http2.NewFramer(rc.bw, bufio.NewReaderSize(c, 64<<10))
	rc.fr.SetReuseFrames()
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	_, _ = io.WriteString(rc.bw, http2.ClientPreface)
	_ = rc.fr.WriteSettings()
	_ = rc.fr.WriteWindowUpdate(0, 1<<30)
	return rc
}

// get sends depth requests and reads their answers; "" or what went wrong.
func (rc *rawH2Client) get(depth int) string {
	for range depth {
		rc.hbuf.Reset()
		for _, kv := range [...][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "svc:9080"}, {":path", "/echo?size=1024"}, {"user-agent", "bench"}, {"accept", "*/*"}} {
			_ = rc.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		_ = rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: rc.id, BlockFragment: rc.hbuf.Bytes(), EndStream: true, EndHeaders: true})
		rc.id += 2
	}
	if err := rc.bw.Flush(); err != nil {
		return err.Error()
	}
	for done := 0; done < depth; {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			return err.Error()
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamEnded() {
				done++
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = rc.fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			return "reset " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			return "GOAWAY " + f.ErrCode.String()
		}
	}
	return ""
}

// BenchmarkH2ServerRoundTrip: h2c requests through the proxy path with h2server and with
// net/http's HTTP/2 server, one at a time ("seq") and 16 in flight ("x16"). allocs/op are
// per request.
func BenchmarkH2ServerRoundTrip(b *testing.B) {
	for _, srv := range []struct {
		name  string
		serve func(testing.TB, string, http.Handler) string
	}{{"h2server", h2Proxy}, {"nethttp", netHTTPH2Proxy}} {
		for _, depth := range []int{1, 16} {
			name := srv.name + "/seq"
			if depth > 1 {
				name = srv.name + "/x16"
			}
			b.Run(name, func(b *testing.B) {
				h := newHopOn(b, resource.HTTP1, rawKiB(b), srv.serve)
				rc := newRawH2Client(b, strings.TrimPrefix(h.url, "http://"))
				if why := rc.get(depth); why != "" {
					b.Fatal(why)
				}
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if n%depth == 0 {
						if why := rc.get(depth); why != "" {
							b.Fatal(why)
						}
					}
					n++
				}
			})
		}
	}
}

// maxH2AllocsPerRequest bounds the h2c proxy path's allocations per request through
// h2server, counted over the whole process: 2, both the test's (x/net's Framer in its
// client parsing the answer's HEADERS frame, the copy of the access record it keeps); the
// proxy makes none (h2frame reads the request's HEADERS frame in place). Under -race,
// raceAllocs more.
const maxH2AllocsPerRequest = 2

// The h2c proxy path allocates at most maxH2AllocsPerRequest times per request.
func TestH2ServerPathAllocations(t *testing.T) {
	h := newHopOn(t, resource.HTTP1, rawKiB(t), h2Proxy)
	rc := newRawH2Client(t, strings.TrimPrefix(h.url, "http://"))
	if n, limit := allocsPerRequest(t, func() string { return rc.get(1) }), allocBound(maxH2AllocsPerRequest); n > limit {
		t.Fatalf("%.1f allocations per request on the h2c proxy path, want at most %.0f", n, limit)
	}
}
