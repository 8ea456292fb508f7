package h2client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Tests against peers that misbehave or end connections on purpose (fakes written with
// the Framer).

// writeResponse sends response headers for stream id.
func writeResponse(fr *http2.Framer, id uint32, status string, end bool) error {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
	return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: end, EndHeaders: true})
}

// GOAWAY mid-flight: the stream at or below the last stream id is answered; the one above
// fails as unprocessed (safe to send again); the connection takes no new stream and
// closes once the answered one ends.
func TestGoAwayMidFlight(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		first, second := readHeaders(fr), readHeaders(fr)
		if first == 0 || second == 0 {
			return
		}
		_ = fr.WriteGoAway(first, http2.ErrCodeNo, []byte("bye"))
		_ = writeResponse(fr, first, "200", false)
		_ = fr.WriteData(first, true, []byte("first"))
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	type result struct {
		body string
		err  error
	}
	// The first request's headers go out before the second's.
	results := make([]chan result, 2)
	sent := make(chan struct{})
	for i := range results {
		results[i] = make(chan result, 1)
		go func() {
			if i == 1 {
				<-sent
			}
			req := newReq(context.Background(), t, http.MethodGet, "http://"+addr+"/", nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				results[i] <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			results[i] <- result{string(b), err}
		}()
		if i == 0 {
			for openStreams(cc) == 0 { // wait for the first stream to be open
				runtime.Gosched()
			}
			close(sent)
		}
	}
	r0, r1 := <-results[0], <-results[1]
	if r0.err != nil || r0.body != "first" {
		t.Fatalf("stream below the last stream id: %q, %v", r0.body, r0.err)
	}
	if !IsUnprocessed(r1.err) || !strings.Contains(r1.err.Error(), "GOAWAY") {
		t.Fatalf("stream above the last stream id: %v, want an unprocessed-stream error naming GOAWAY", r1.err)
	}
	if cc.Err() == nil || cc.Available() != 0 {
		t.Fatalf("after GOAWAY: Err %v, Available %d; want no new streams", cc.Err(), cc.Available())
	}
	err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	if !IsUnprocessed(err) || HeadersWritten(err) {
		t.Fatalf("request after GOAWAY: %v, want unprocessed and unsent", err)
	}
}

// A RST_STREAM from the server fails the stream with the server's code (REFUSED_STREAM is
// how a server says it did not process it); the connection goes on.
func TestServerResetStream(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		id := readHeaders(fr)
		_ = fr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		id = readHeaders(fr)
		_ = writeResponse(fr, id, "200", false)
		_ = fr.WriteData(id, false, []byte("part"))
		_ = fr.WriteRSTStream(id, http2.ErrCodeInternal)
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	var se http2.StreamError
	if !errors.As(err, &se) || se.Code != http2.ErrCodeRefusedStream || !HeadersWritten(err) {
		t.Fatalf("error %v, want a REFUSED_STREAM stream error", err)
	}
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if string(b) != "part" || !errors.As(err, &se) || se.Code != http2.ErrCodeInternal || !strings.Contains(err.Error(), "stream error") {
		t.Fatalf("body %q, %v; want the data before the reset, then the stream error", b, err)
	}
}

// A server that closes the connection after reading the request fails the stream with
// the connection's end (what the pool reports as connection termination), after the
// headers were written.
func TestServerCloses(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		readHeaders(fr)
		_ = c.Close()
	})
	cc := dial(t, addr, Config{})
	err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	// EOF, or a reset when the close found bytes of ours unread.
	ended := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
	if !ended || !HeadersWritten(err) {
		t.Fatalf("error %v, want unexpected EOF (or connection reset) after the headers", err)
	}
	if cc.Err() == nil || cc.Available() != 0 {
		t.Fatal("closed connection still takes streams")
	}
}

// A server that stops answering (no frame at all, PINGs unanswered) is found by the PING
// health check: streams fail with "client connection lost".
func TestBlackholedServer(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		readHeaders(fr)
		_, _ = io.Copy(io.Discard, c) // reads, never answers
	})
	cc := dial(t, addr, Config{PingInterval: 20e6, PingTimeout: 20e6})
	err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	if err == nil || !strings.Contains(err.Error(), "client connection lost") {
		t.Fatalf("error %v, want client connection lost", err)
	}
}

// A server that answers PINGs keeps the connection through the health check.
func TestPingAnswered(t *testing.T) {
	release := make(chan struct{})
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		<-release
		_, _ = io.WriteString(w, "late")
	})
	pings := 0
	cc := dial(t, addr, Config{PingInterval: 5e6, PingTimeout: 1e9})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for pings < 5 {
			n := cc.frames.Load()
			for cc.frames.Load() == n {
				runtime.Gosched()
			}
			pings++
		}
		close(release)
	}()
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, resp); got != "late" {
		t.Fatalf("body %q", got)
	}
}

// Shutdown sends GOAWAY, lets the open stream finish and closes.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	cc := dial(t, addr, Config{})
	got := make(chan string, 1)
	go func() {
		resp, err := cc.RoundTrip(newReq(context.Background(), t, http.MethodGet, "http://"+addr+"/", nil))
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		got <- string(b)
	}()
	<-arrived
	shut := make(chan error, 1)
	go func() { shut <- cc.Shutdown(context.Background()) }()
	for cc.Err() == nil {
		runtime.Gosched()
	}
	if err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)); !IsUnprocessed(err) {
		t.Fatalf("request during Shutdown: %v, want unprocessed", err)
	}
	close(release)
	if b := <-got; b != "done" {
		t.Fatalf("open stream got %q", b)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func openStreams(cc *ClientConn) int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.streams)
}

// isDraining reports that Shutdown (or GOAWAY) has begun.
func (cc *ClientConn) isDraining() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.draining
}

// A malformed response header block (an upper-case field name, a request pseudo-header)
// fails its stream with PROTOCOL_ERROR; the connection and its HPACK state go on.
func TestMalformedResponseHeaders(t *testing.T) {
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		for _, bad := range [][2]string{{"X-Upper", "v"}, {":path", "/"}} {
			id := readHeaders(fr)
			buf.Reset()
			_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			_ = enc.WriteField(hpack.HeaderField{Name: bad[0], Value: bad[1]})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
		}
		id := readHeaders(fr)
		buf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "204"})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	for range 2 {
		err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
		var se http2.StreamError
		if !errors.As(err, &se) || se.Code != http2.ErrCodeProtocol || !strings.Contains(err.Error(), "malformed response") {
			t.Fatalf("error %v, want a PROTOCOL_ERROR stream error saying the response was malformed", err)
		}
	}
	resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d after the malformed ones, want 204", resp.StatusCode)
	}
}

// Request heads leave nothing in the server's HPACK table (the client never indexes) and
// decode whole every time.
func TestRequestHeadsUseNoDynamicTable(t *testing.T) {
	type seen struct {
		fields  map[string]string
		indexed bool
	}
	got := make(chan seen, 2)
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		d := hpack.NewDecoder(4096, nil)
		for range 2 {
			f := nextHeaders(fr)
			if f == nil {
				return
			}
			fields, err := d.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Errorf("decoding the request head: %v", err)
				return
			}
			m := map[string]string{}
			for _, hf := range fields {
				m[hf.Name] = hf.Value
			}
			_, err = d.DecodeFull([]byte{0x80 | 62})
			got <- seen{m, err == nil}
			_ = writeResponse(fr, f.StreamID, "200", true)
		}
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	for i := range 2 {
		req := newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/items?page="+strconv.Itoa(i), nil)
		req.Header.Set("X-Request-Id", "id-"+strconv.Itoa(i))
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		s := <-got
		want := map[string]string{":method": "GET", ":path": "/items?page=" + strconv.Itoa(i), ":scheme": "http", ":authority": addr, "x-request-id": "id-" + strconv.Itoa(i)}
		for k, v := range want {
			if s.fields[k] != v {
				t.Fatalf("request %d: %s = %q, want %q (all: %q)", i, k, s.fields[k], v, s.fields)
			}
		}
		if s.indexed {
			t.Fatalf("after request %d the server's dynamic table has an entry: the client indexed a field", i)
		}
	}
}

// writeCounter counts the writes made to a connection.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	return w.Conn.Write(p)
}

// Requests sent together on one connection share writes: fifty concurrent GETs go out
// in far fewer than fifty write(2)s, and every one is answered.
func TestConcurrentRequestsShareWrites(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P, as the sidecar runs: deterministic turns
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, r.URL.Path) })
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{Conn: nc}
	cc, err := NewClientConn(wc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	if err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/warm", nil)); err != nil {
		t.Fatal(err)
	}
	const n = 50
	before := wc.writes.Load()
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			<-start
			path := "/r" + strconv.Itoa(i)
			resp, err := cc.RoundTrip(newReq(context.Background(), t, http.MethodGet, "http://"+addr+path, nil))
			if err != nil {
				errs <- err
				return
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil && string(b) != path {
				err = fmt.Errorf("answer %q to %s", b, path)
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Writes besides the requests' own: WINDOW_UPDATEs are batched by a quarter window, so
	// the 50 small answers need none.
	if w := wc.writes.Load() - before; w > n/5 {
		t.Fatalf("%d concurrent requests took %d writes, want at most %d", n, w, n/5)
	} else {
		t.Logf("%d concurrent requests, %d writes", n, w)
	}
}

// The client asks the server for no HPACK dynamic table (SETTINGS_HEADER_TABLE_SIZE 0),
// and still reads answers from a server that indexes anyway.
func TestAsksForNoDynamicTable(t *testing.T) {
	got := make(chan map[http2.SettingID]uint32, 1)
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					m := map[http2.SettingID]uint32{}
					_ = f.ForeachSetting(func(s http2.Setting) error { m[s.ID] = s.Val; return nil })
					got <- m
					_ = fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				// x/net's encoder indexes: the answer uses the dynamic table regardless.
				var buf bytes.Buffer
				enc := hpack.NewEncoder(&buf)
				for _, kv := range [][2]string{{":status", "200"}, {"x-indexed", "1"}} {
					_ = enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
				}
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
			}
		}
	})
	cc := dial(t, addr, Config{})
	for range 2 {
		resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Indexed") != "1" {
			t.Fatalf("answer from an indexing server: %d %v", resp.StatusCode, resp.Header)
		}
	}
	if s := <-got; s[http2.SettingHeaderTableSize] != 0 {
		t.Fatalf("client SETTINGS %v: want SETTINGS_HEADER_TABLE_SIZE 0", s)
	} else if _, ok := s[http2.SettingHeaderTableSize]; !ok {
		t.Fatalf("client SETTINGS %v do not set SETTINGS_HEADER_TABLE_SIZE (default 4096)", s)
	}
}

// Shutdown while the last stream's request body is still being sent: the stream's final
// DATA (END_STREAM) reaches the server before the connection closes, although its writer
// left it for a flush still to come.
func TestShutdownSendsTheLastFrames(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	sawEnd := make(chan bool, 1)
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		id := readHeaders(fr)
		if id == 0 {
			sawEnd <- false
			return
		}
		_ = writeResponse(fr, id, "200", true) // answered before the request body ends
		end := false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
				end = true
			}
		}
		sawEnd <- end
	})
	cc := dial(t, addr, Config{})
	pr, pw := io.Pipe()
	req := newReq(t.Context(), t, http.MethodPost, "http://"+addr+"/", pr)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil { // not closed: that would reset the stream
		t.Fatal(err)
	}
	defer resp.Body.Close()
	shut := make(chan error, 1)
	go func() { shut <- cc.Shutdown(context.Background()) }()
	for !cc.isDraining() {
		runtime.Gosched()
	}
	_, _ = io.WriteString(pw, "last bytes")
	_ = pw.Close()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !<-sawEnd {
		t.Fatal("the connection closed before the server got the request body's END_STREAM")
	}
}

// An answer's HEADERS frame is read in place when its block is whole and it carries no
// padding or priority, else by the Framer: the answers are the same. A HEADERS frame
// while a block continues is a protocol error that ends the connection, as the Framer
// finds it.
func TestResponseHeadersBothWays(t *testing.T) {
	block := func(enc *hpack.Encoder, buf *bytes.Buffer, status string) []byte {
		buf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
		_ = enc.WriteField(hpack.HeaderField{Name: "x-status", Value: status})
		return append([]byte(nil), buf.Bytes()...)
	}
	addr := fakeServer(t, func(fr *http2.Framer, c net.Conn) {
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		id := readHeaders(fr) // in place
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(enc, &buf, "201"), EndStream: true, EndHeaders: true})
		id = readHeaders(fr) // padded: the Framer
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(enc, &buf, "202"), EndStream: true, EndHeaders: true, PadLength: 5})
		id = readHeaders(fr) // in CONTINUATIONs: the Framer
		b := block(enc, &buf, "203")
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b[:1]})
		_ = fr.WriteContinuation(id, true, b[1:])
		_ = fr.WriteData(id, true, nil)
		first, second := readHeaders(fr), readHeaders(fr) // a whole block while one continues
		fr.AllowIllegalWrites = true
		buf.Reset()
		_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: "205"}) // a whole field: the block could go on
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: first, BlockFragment: append([]byte(nil), buf.Bytes()...)})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: second, BlockFragment: block(enc, &buf, "204"), EndStream: true, EndHeaders: true})
		drain(fr)
	})
	cc := dial(t, addr, Config{})
	for _, want := range []int{201, 202, 203} {
		resp, err := cc.RoundTrip(newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want || resp.Header.Get("X-Status") != strconv.Itoa(want) {
			t.Fatalf("status %d, X-Status %q; want %d", resp.StatusCode, resp.Header.Get("X-Status"), want)
		}
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)) }()
		time.Sleep(20 * time.Millisecond) // in order
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Fatal("a request answered on a connection whose peer broke a header block")
		}
	}
}
