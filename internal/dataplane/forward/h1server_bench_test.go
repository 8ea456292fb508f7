package forward_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
)

// The plain HTTP/1.1 proxy path as the proxy's listeners serve it: a raw client →
// http1.Conn → h1server → Forwarder → pool → a raw upstream. Client and upstream are raw
// sockets with fixed buffers, so the allocations counted are the proxy's.

// h1Proxy serves h at addr with h1server behind http1's checked connections, as the
// proxy's HTTP sockets do.
func h1Proxy(tb testing.TB, addr string, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	s := &h1server.Server{Handler: h, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour, ConnContext: withAddrs}
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(checked{ln}) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if s.Shutdown(ctx) != nil {
			_ = s.Close()
		}
		<-done
	})
	return ln.Addr().String()
}

// netHTTPProxy is h1Proxy with net/http's server (LUCID_HTTP1_SERVER=nethttp).
func netHTTPProxy(tb testing.TB, addr string, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, IdleTimeout: time.Hour, ConnContext: withAddrs}
	go func() { _ = srv.Serve(checked{ln}) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

type checked struct{ net.Listener }

func (l checked) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return http1.NewConn(c, http1.Limits{}, nil), nil
}

// rawKiB is an upstream that answers every GET with 1 KiB as nginx does (Connection:
// keep-alive on every answer), with no allocation per request.
func rawKiB(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.84.2:0")
	if err != nil {
		tb.Fatal(err)
	}
	answer := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n\r\n" + strings.Repeat("x", 1024))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(answer); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

// rawClient sends GETs on one connection and reads the answers into a fixed buffer.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
}

func newRawClient(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return &rawClient{c: c, br: bufio.NewReaderSize(c, 16<<10), buf: make([]byte, 4096),
		req: []byte("GET /echo?size=1024 HTTP/1.1\r\nHost: svc:9080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
}

// get sends one request and reads its answer; "" or what went wrong.
func (rc *rawClient) get() string {
	if _, err := rc.c.Write(rc.req); err != nil {
		return err.Error()
	}
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return err.Error()
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return "status line " + string(line)
	}
	n := -1
	for {
		line, err = rc.br.ReadSlice('\n')
		if err != nil {
			return err.Error()
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n != 1024 {
		return "content-length " + strconv.Itoa(n)
	}
	if _, err := io.ReadFull(rc.br, rc.buf[:n]); err != nil {
		return err.Error()
	}
	return ""
}

// BenchmarkH1ServerRoundTrip is one request at a time through the proxy's own HTTP/1.1
// loop (allocs/op are the proxy's: client and upstream are raw).
func BenchmarkH1ServerRoundTrip(b *testing.B) {
	for _, loop := range []struct {
		name  string
		serve func(testing.TB, string, http.Handler) string
	}{{"h1server", h1Proxy}, {"nethttp", netHTTPProxy}} {
		b.Run(loop.name, func(b *testing.B) {
			h := newHopOn(b, resource.HTTP1, rawKiB(b), loop.serve)
			rc := newRawClient(b, strings.TrimPrefix(h.url, "http://"))
			if why := rc.get(); why != "" {
				b.Fatal(why)
			}
			b.ReportAllocs()
			for b.Loop() {
				if why := rc.get(); why != "" {
					b.Fatal(why)
				}
			}
		})
	}
}

// maxAllocsPerRequest bounds the plain proxy path's allocations per request through
// h1server, counted over the whole process: 1, the copy of the access record the test's
// logger keeps (newHopOn); the proxy itself makes none (the heads' strings and the request
// id share blocks, strslab). Under -race, raceAllocs more.
const maxAllocsPerRequest = 1

// raceAllocs is what -race adds to the bounds: its instrumentation allocates, and
// sync.Pool drops a quarter of what is put back at random (the exchange, an HTTP/2 stream,
// an upstream response with its header map). Measured: 4 to 5 more on each path.
const raceAllocs = 7

// allocBound is bound, or bound+raceAllocs under -race.
func allocBound(bound int) float64 {
	if raceEnabled {
		return float64(bound + raceAllocs)
	}
	return float64(bound)
}

// The plain HTTP/1.1 proxy path allocates at most maxAllocsPerRequest times per request.
func TestH1ServerPathAllocations(t *testing.T) {
	h := newHopOn(t, resource.HTTP1, rawKiB(t), h1Proxy)
	rc := newRawClient(t, strings.TrimPrefix(h.url, "http://"))
	if n, limit := allocsPerRequest(t, rc.get), allocBound(maxAllocsPerRequest); n > limit {
		t.Fatalf("%.1f allocations per request on the plain proxy path, want at most %.0f", n, limit)
	}
}

// A sidecar's outbound hop to a mesh service (its peer metadata sent upstream) allocates
// no more than its inbound one.
func TestH1ServerOutboundPathAllocations(t *testing.T) {
	h := newHopDir(t, resource.HTTP1, rawKiB(t), h1Proxy, "outbound")
	rc := newRawClient(t, strings.TrimPrefix(h.url, "http://"))
	if n, limit := allocsPerRequest(t, rc.get), allocBound(maxAllocsPerRequest); n > limit {
		t.Fatalf("%.1f allocations per request on the outbound proxy path, want at most %.0f", n, limit)
	}
}

// allocsPerRequest warms the path with 50 requests (pools, connections, workers), then
// returns the allocations per request over 500 more; get returns "" or what went wrong.
func allocsPerRequest(t *testing.T, get func() string) float64 {
	t.Helper()
	for range 50 {
		if why := get(); why != "" {
			t.Fatal(why)
		}
	}
	var why string
	n := testing.AllocsPerRun(500, func() {
		if w := get(); w != "" {
			why = w
		}
	})
	if why != "" {
		t.Fatal(why)
	}
	t.Logf("%.1f allocations per request", n)
	return n
}

// An upstream's answer goes downstream with its fields in the order it sent them, as
// Envoy passes them on, without its hop-by-hop Connection, and with what the proxy adds
// after them (this hop is a sidecar's inbound: its peer metadata, and
// x-envoy-upstream-service-time); the next answers on the connection too.
func TestAnswerFieldsInTheUpstreamsOrder(t *testing.T) {
	h := newHopOn(t, resource.HTTP1, rawKiB(t), h1Proxy)
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for range 3 {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: svc:9080\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, line := range testutil.HeadLines(t, br)[1:] {
			if name, _, _ := strings.Cut(line, ":"); name != "Date" {
				names = append(names, name)
			}
		}
		want := "Server Content-Type Content-Length X-Envoy-Peer-Metadata X-Envoy-Peer-Metadata-Id X-Envoy-Upstream-Service-Time"
		if got := strings.Join(names, " "); got != want {
			t.Fatalf("answer fields %q, want %q", got, want)
		}
		if _, err := io.ReadFull(br, make([]byte, 1024)); err != nil {
			t.Fatal(err)
		}
	}
}

// The fields the forwarder reads from every request (the request id, the client's
// forwarding fields, the loop marker, peer metadata, the client certificate's) take
// effect through h1server in any case, and their absence too: h1server says which its
// head had, and the forwarder looks up only those.
func TestRequestFieldsThroughH1Server(t *testing.T) {
	heads := make(chan http.Header, 4)
	up := upstreamtest.Answers(t, "127.0.84.2", func(req *http.Request) string {
		heads <- req.Header
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	h := newHopOn(t, resource.HTTP1, up, h1Proxy)
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	send := func(fields string) (status string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: svc:9080\r\n"+fields+"\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.Status
	}
	send("x-request-id: abc\r\nX-FORWARDED-PROTO: https\r\nuser-agent: ua\r\nx-forwarded-for: 192.0.2.9\r\n" +
		"x-envoy-peer-metadata: bm8=\r\nx-forwarded-client-cert: By=x\r\nx-lucid-hops: t1\r\n")
	got, info := <-heads, h.info(t)
	if got.Get("X-Request-Id") != "abc" || got.Get("X-Forwarded-Proto") != "https" || got.Get("User-Agent") != "ua" ||
		got.Get("X-Envoy-Peer-Metadata") != "" || got.Get("X-Forwarded-Client-Cert") != "" || got.Get("X-Lucid-Hops") != "" {
		t.Errorf("with the fields, the upstream got %q", got)
	}
	if info.RequestID != "abc" || info.UserAgent != "ua" || info.ForwardedFor != "192.0.2.9" {
		t.Errorf("with the fields, the record has id %q, user agent %q, forwarded for %q", info.RequestID, info.UserAgent, info.ForwardedFor)
	}

	send("")
	got, info = <-heads, h.info(t)
	if id := got.Get("X-Request-Id"); len(id) != 36 || id != info.RequestID || got.Get("X-Forwarded-Proto") != "http" ||
		info.UserAgent != "" || info.ForwardedFor != "" {
		t.Errorf("without the fields, the upstream got %q; the record has id %q, user agent %q, forwarded for %q",
			got, info.RequestID, info.UserAgent, info.ForwardedFor)
	}

	if got := send("x-lucid-hops: " + strings.Repeat("t,", 31) + "t\r\n"); got != "508 Loop Detected" {
		t.Errorf("a request that crossed 32 listeners: %s, want 508 Loop Detected", got)
	}
	h.info(t)
	// A gRPC request (its content-type in lower case) gets the refusal in gRPC's form.
	if got := send("content-type: application/grpc\r\nx-lucid-hops: " + strings.Repeat("t,", 31) + "t\r\n"); got != "200 OK" {
		t.Errorf("a gRPC request that crossed 32 listeners: %s, want 200 OK (grpc-status)", got)
	}
	if info := h.info(t); info.GRPCStatus == "" {
		t.Error("a gRPC request's local reply has no grpc-status")
	}
}
