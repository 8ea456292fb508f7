package h2server_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
}

// TestSettings: the server announces its limits and extended CONNECT (RFC 8441).
func TestSettings(t *testing.T) {
	s := &h2server.Server{Handler: okHandler(), Config: &http.HTTP2Config{MaxConcurrentStreams: 7, MaxReceiveBufferPerStream: 1 << 18}, MaxHeaderBytes: 4096}
	r := dialRaw(t, serve(t, s))
	want := map[http2.SettingID]uint32{
		http2.SettingMaxConcurrentStreams:  7,
		http2.SettingInitialWindowSize:     1 << 18,
		http2.SettingEnableConnectProtocol: 1,
		http2.SettingMaxHeaderListSize:     4096 + 320,
		http2.SettingMaxFrameSize:          1 << 20,
	}
	for id, v := range want {
		if r.settings[id] != v {
			t.Errorf("SETTINGS %v = %d, want %d", id, r.settings[id], v)
		}
	}
}

// TestTooManyStreams: a stream over the concurrent-stream limit is refused; the ones
// within it are served.
func TestTooManyStreams(t *testing.T) {
	release := make(chan struct{})
	s := &h2server.Server{Config: &http.HTTP2Config{MaxConcurrentStreams: 1}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			<-release
		}
	})}
	r := dialRaw(t, serve(t, s))
	r.get(1, "/block")
	r.get(3, "/other")
	if status, code := r.answer(3); code != http2.ErrCodeRefusedStream {
		t.Errorf("second stream: status %q, reset %v; want REFUSED_STREAM", status, code)
	}
	close(release)
	if status, _ := r.answer(1); status != "200" {
		t.Errorf("first stream: status %q", status)
	}
	r.get(5, "/other")
	if status, _ := r.answer(5); status != "200" {
		t.Errorf("stream after the first ended: status %q", status)
	}
}

// TestBadHeaders: malformed requests are reset (PROTOCOL_ERROR) or answered 400/431, and
// the connection goes on serving (a body sent after a refused head is dropped).
func TestBadHeaders(t *testing.T) {
	s := &h2server.Server{Handler: okHandler(), MaxHeaderBytes: 1024}
	r := dialRaw(t, serve(t, s))
	cases := []struct {
		name   string
		fields []string
		status string
		code   http2.ErrCode
	}{
		{"uppercase name", []string{":method", "GET", ":scheme", "http", ":path", "/", "X-Upper", "v"}, "", http2.ErrCodeProtocol},
		{"no path", []string{":method", "GET", ":scheme", "http", ":authority", "a"}, "", http2.ErrCodeProtocol},
		{"unknown pseudo", []string{":method", "GET", ":scheme", "http", ":path", "/", ":bogus", "x"}, "", http2.ErrCodeProtocol},
		{"pseudo after regular", []string{":method", "GET", "x-a", "b", ":scheme", "http", ":path", "/"}, "", http2.ErrCodeProtocol},
		{"connection field", []string{":method", "GET", ":scheme", "http", ":path", "/", "connection", "keep-alive"}, "400", 0},
		{"te not trailers", []string{":method", "GET", ":scheme", "http", ":path", "/", "te", "gzip"}, "400", 0},
		{"host mismatch", []string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a", "host", "b"}, "", http2.ErrCodeProtocol},
		{"connect with path", []string{":method", "CONNECT", ":authority", "a:1", ":path", "/"}, "", http2.ErrCodeProtocol},
		{"too large", []string{":method", "GET", ":scheme", "http", ":path", "/", "x-big", strings.Repeat("a", 800), "x-big2", strings.Repeat("b", 800)}, "431", 0},
		{"fine", []string{":method", "GET", ":scheme", "http", ":path", "/"}, "200", 0},
	}
	id := uint32(1)
	for _, tc := range cases {
		r.headers(id, true, tc.fields...)
		status, code := r.answer(id)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: status %q reset %v, want %q %v", tc.name, status, code, tc.status, tc.code)
		}
		if code != 0 {
			_ = r.fr.WriteData(id, true, []byte("x")) // a body on its way: dropped, the connection goes on
		}
		id += 2
	}
}

// TestProtocolErrors: a frame that breaks the connection's rules ends it with GOAWAY and
// the right code.
func TestProtocolErrors(t *testing.T) {
	cases := []struct {
		name string
		send func(r *raw)
		code http2.ErrCode
	}{
		{"even stream", func(r *raw) { r.get(2, "/") }, http2.ErrCodeProtocol},
		{"stream id goes down", func(r *raw) { r.get(5, "/"); r.get(3, "/") }, http2.ErrCodeProtocol},
		{"data on idle stream", func(r *raw) { _ = r.fr.WriteData(9, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"window overflow", func(r *raw) { _ = r.fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"push promise", func(r *raw) {
			_ = r.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: []byte{0x82}, EndHeaders: true})
		}, http2.ErrCodeProtocol},
		{"frame too large", func(r *raw) {
			r.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/")
			_ = r.fr.WriteData(1, false, make([]byte, 2<<20))
		}, http2.ErrCodeFrameSize},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &h2server.Server{Handler: okHandler()}
			r := dialRaw(t, serve(t, s))
			tc.send(r)
			g := r.goAway()
			if g == nil || g.ErrCode != tc.code {
				t.Fatalf("GOAWAY %v, want code %v", g, tc.code)
			}
			if f := r.next(); f != nil && f.Header().Type != http2.FrameHeaders && f.Header().Type != http2.FrameData && f.Header().Type != http2.FrameRSTStream {
				t.Errorf("after GOAWAY: %v", f)
			}
		})
	}
}

// TestPing: PINGs are answered with their data.
func TestPing(t *testing.T) {
	s := &h2server.Server{Handler: okHandler()}
	r := dialRaw(t, serve(t, s))
	data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	_ = r.fr.WritePing(false, data)
	f := r.next()
	if p, ok := f.(*http2.PingFrame); !ok || !p.IsAck() || p.Data != data {
		t.Fatalf("answer to PING: %v", f)
	}
}

// TestKeepalivePing: a quiet client is PINGed, and one that does not answer is cut off.
func TestKeepalivePing(t *testing.T) {
	var logged testutil.Buffer
	s := &h2server.Server{Handler: okHandler(), ErrorLog: log.New(&logged, "", 0),
		Config: &http.HTTP2Config{SendPingTimeout: 20 * time.Millisecond, PingTimeout: 40 * time.Millisecond}}
	r := dialRaw(t, serve(t, s))
	f := r.next()
	if p, ok := f.(*http2.PingFrame); !ok || p.IsAck() {
		t.Fatalf("first frame to a quiet client: %v, want a PING", f)
	}
	if f := r.next(); f != nil {
		t.Fatalf("after the unanswered PING: %v, want the connection closed", f)
	}
	if !strings.Contains(logged.String(), "no answer to PING") {
		t.Errorf("log: %q", logged.String())
	}
}

// TestIdleTimeout: a connection without streams for IdleTimeout gets GOAWAY and closes.
func TestIdleTimeout(t *testing.T) {
	s := &h2server.Server{Handler: okHandler(), IdleTimeout: 30 * time.Millisecond}
	r := dialRaw(t, serve(t, s))
	r.get(1, "/")
	if status, _ := r.answer(1); status != "200" {
		t.Fatalf("status %q", status)
	}
	g := r.goAway()
	if g == nil || g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v, want NO_ERROR after stream 1", g)
	}
}

// TestShutdown: GOAWAY goes out at once, the stream in flight finishes, new streams are
// not served, and Shutdown returns once the connection has closed.
func TestShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})}
	r := dialRaw(t, serve(t, s))
	r.get(1, "/")
	<-started
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	g := r.goAway()
	if g == nil || g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
		t.Fatalf("GOAWAY %v", g)
	}
	r.get(3, "/") // after GOAWAY: ignored
	close(release)
	if status, _ := r.answer(1); status != "200" {
		t.Fatalf("stream in flight: status %q", status)
	}
	var body []byte
	for f := r.next(); f != nil; f = r.next() {
		if d, ok := f.(*http2.DataFrame); ok {
			if d.StreamID != 1 {
				t.Errorf("DATA on stream %d after GOAWAY", d.StreamID)
			}
			body = append(body, d.Data()...)
		}
		if h, ok := f.(*http2.MetaHeadersFrame); ok && h.StreamID != 1 {
			t.Errorf("stream %d served after GOAWAY", h.StreamID)
		}
	}
	if string(body) != "finished" {
		t.Errorf("body %q", body)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestKeepAlivesOff: with keep-alives off, an idle connection gets GOAWAY at once and a
// busy one after its last stream.
func TestKeepAlivesOff(t *testing.T) {
	release := make(chan struct{})
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })}
	addr := serve(t, s)
	idle := dialRaw(t, addr)
	busy := dialRaw(t, addr)
	busy.get(1, "/")
	_ = busy.fr.WritePing(false, [8]byte{}) // the stream has been read once its PING is answered
	if _, ok := busy.next().(*http2.PingFrame); !ok {
		t.Fatal("no PING answer")
	}
	s.SetKeepAlivesEnabled(false)
	if g := idle.goAway(); g == nil || g.ErrCode != http2.ErrCodeNo {
		t.Fatalf("idle connection: GOAWAY %v", g)
	}
	close(release)
	if status, _ := busy.answer(1); status != "200" {
		t.Fatalf("busy connection's stream: %q", status)
	}
	if g := busy.goAway(); g == nil || g.LastStreamID != 1 {
		t.Fatalf("busy connection: GOAWAY %v", g)
	}
}

// TestResponseHeadsUseNoDynamicTable: response heads leave nothing in the client's HPACK
// table (the server never indexes, so a client's SETTINGS_HEADER_TABLE_SIZE, here 0 sent
// after the first request, needs nothing from it) and decode whole every time.
func TestResponseHeadsUseNoDynamicTable(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Request-Id", r.URL.Path)
		w.WriteHeader(http.StatusCreated)
	})}
	r := dialRaw(t, serve(t, s))
	d := hpack.NewDecoder(4096, nil)
	r.fr.ReadMetaHeaders = d
	for i, id := range []uint32{1, 3, 5} {
		if i == 1 {
			if err := r.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}); err != nil {
				t.Fatal(err)
			}
		}
		path := "/" + strconv.Itoa(int(id))
		r.get(id, path)
		var h *http2.MetaHeadersFrame
		for h == nil {
			f := r.next()
			if f == nil {
				t.Fatalf("connection ended before stream %d was answered", id)
			}
			h, _ = f.(*http2.MetaHeadersFrame)
		}
		got := map[string]string{}
		for _, f := range h.Fields {
			got[f.Name] = f.Value
		}
		if got[":status"] != "201" || got["content-type"] != "text/plain" || got["x-request-id"] != path || got["date"] == "" {
			t.Fatalf("stream %d: response fields %q", id, got)
		}
		if _, err := d.DecodeFull([]byte{0x80 | 62}); err == nil {
			t.Fatalf("after stream %d the client's dynamic table has an entry: the server indexed a field", id)
		}
	}
}

// HEADERS frames are read in place when their block is whole and they carry no padding or
// priority, else by the Framer: both give the same requests, and the same errors.
func TestHeadersFramesBothWays(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		w.Header().Set("X-A", r.Header.Get("A"))
	})}
	addr := serve(t, s)
	block := func(r *raw, path string) []byte {
		r.hbuf.Reset()
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", path}, {"a", path}} {
			_ = r.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		return append([]byte(nil), r.hbuf.Bytes()...)
	}
	r := dialRaw(t, addr)
	id := uint32(1)
	// check reads the answers to the streams from id on, for paths in order (they may come
	// in any order).
	check := func(paths ...string) {
		t.Helper()
		want := map[uint32]string{}
		for i, p := range paths {
			want[id+2*uint32(i)] = p
		}
		id += 2 * uint32(len(paths))
		for len(want) > 0 {
			f := r.next()
			if f == nil {
				t.Fatalf("%v: the connection ended", want)
			}
			mh, ok := f.(*http2.MetaHeadersFrame)
			if !ok || want[mh.StreamID] == "" {
				continue
			}
			path := want[mh.StreamID]
			delete(want, mh.StreamID)
			if got := mh.PseudoValue("status"); got != "200" {
				t.Fatalf("%s: status %q", path, got)
			}
			for _, hf := range mh.RegularFields() {
				if (hf.Name == "x-path" || hf.Name == "x-a") && hf.Value != path {
					t.Fatalf("%s: %s %q", path, hf.Name, hf.Value)
				}
			}
		}
	}
	// In place: the whole block, END_STREAM or not (a body follows).
	_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(r, "/plain"), EndStream: true, EndHeaders: true})
	check("/plain")
	_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(r, "/body"), EndHeaders: true})
	_ = r.fr.WriteData(id, true, []byte("x"))
	check("/body")
	// By the Framer: padding, priority, a block in CONTINUATIONs.
	_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(r, "/padded"), EndStream: true, EndHeaders: true, PadLength: 7})
	check("/padded")
	_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(r, "/prio"), EndStream: true, EndHeaders: true,
		Priority: http2.PriorityParam{StreamDep: 0, Weight: 9}})
	check("/prio")
	b := block(r, "/continued")
	_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b[:3], EndStream: true})
	_ = r.fr.WriteContinuation(id, false, b[3:6])
	_ = r.fr.WriteContinuation(id, true, b[6:])
	check("/continued")
	// By the Framer: a frame larger than the read buffer.
	b = block(r, "/large")
	r.hbuf.Reset()
	_ = r.enc.WriteField(hpack.HeaderField{Name: "x-large", Value: strings.Repeat("v", 40<<10)})
	b = append(b, r.hbuf.Bytes()...)
	_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndStream: true, EndHeaders: true})
	check("/large")
	// Both in one write: the second is buffered already when the first is read.
	var two bytes.Buffer
	fr := http2.NewFramer(&two, nil)
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block(r, "/one"), EndStream: true, EndHeaders: true})
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id + 2, BlockFragment: block(r, "/two"), EndStream: true, EndHeaders: true})
	_, _ = r.c.Write(two.Bytes())
	check("/one", "/two")

	for _, tc := range []struct {
		name string
		send func(r *raw)
		code http2.ErrCode
	}{
		{"stream 0", func(r *raw) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 0, BlockFragment: block(r, "/"), EndStream: true, EndHeaders: true})
		}, http2.ErrCodeProtocol},
		{"continuation after a whole block", func(r *raw) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(r, "/"), EndHeaders: true})
			_ = r.fr.WriteContinuation(1, true, []byte{0x82})
		}, http2.ErrCodeProtocol},
		{"headers over the frame size", func(r *raw) {
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: make([]byte, 2<<20), EndStream: true, EndHeaders: true})
		}, http2.ErrCodeFrameSize},
		{"headers while a block continues", func(r *raw) {
			b := block(r, "/")
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: b[:2]})
			_ = r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block(r, "/"), EndStream: true, EndHeaders: true})
		}, http2.ErrCodeProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.fr.AllowIllegalWrites = true
			tc.send(r)
			if g := r.goAway(); g == nil || g.ErrCode != tc.code {
				t.Fatalf("GOAWAY %v (code %v), want code %v", g, g.ErrCode, tc.code)
			}
		})
	}
}
