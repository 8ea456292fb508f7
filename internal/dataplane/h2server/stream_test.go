package h2server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// TestPanic: a handler that panics (or ends its goroutine) has its stream reset with
// INTERNAL_ERROR (a panic is logged, unless it is http.ErrAbortHandler); the connection
// goes on.
func TestPanic(t *testing.T) {
	var logged bytes.Buffer
	s := &h2server.Server{ErrorLog: log.New(&logged, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic("boom")
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/goexit":
			runtime.Goexit()
		}
	})}
	r := dialRaw(t, serve(t, s))
	r.get(1, "/panic")
	if status, _ := r.answer(1); status != "200" {
		t.Fatalf("flushed head: %q", status)
	}
	if _, code := r.answer(1); code != http2.ErrCodeInternal {
		t.Errorf("after the panic: reset %v, want INTERNAL_ERROR", code)
	}
	r.get(3, "/abort")
	if _, code := r.answer(3); code != http2.ErrCodeInternal {
		t.Errorf("ErrAbortHandler: reset %v, want INTERNAL_ERROR", code)
	}
	r.get(5, "/goexit")
	if _, code := r.answer(5); code != http2.ErrCodeInternal {
		t.Errorf("runtime.Goexit: reset %v, want INTERNAL_ERROR", code)
	}
	r.get(7, "/fine")
	if status, _ := r.answer(7); status != "200" {
		t.Errorf("after the panics: status %q", status)
	}
	if n := strings.Count(logged.String(), "panic serving"); n != 1 {
		t.Errorf("logged %d panics, want 1 (ErrAbortHandler is quiet): %s", n, logged.String())
	}
}

// TestClientReset: a stream the client resets has its context cancelled and its body
// reads failing; the handler's writes fail.
func TestClientReset(t *testing.T) {
	gone := make(chan error, 1)
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		_, err := r.Body.Read(make([]byte, 1))
		gone <- err
	})}
	r := dialRaw(t, serve(t, s))
	r.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/")
	if status, _ := r.answer(1); status != "200" {
		t.Fatal(status)
	}
	_ = r.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	if err := <-gone; err == nil {
		t.Error("body read after the reset did not fail")
	}
}

// TestCancelByClient: a request cancelled by the client (x/net's Transport) cancels the
// handler's context.
func TestCancelByClient(t *testing.T) {
	inHandler := make(chan struct{})
	cancelled := make(chan struct{})
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-r.Context().Done()
		close(cancelled)
	})}
	addr := serve(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	go func() { <-inHandler; cancel() }()
	resp, err := h2c(t).Do(req)
	if err == nil {
		_ = resp.Body.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v", err)
	}
	<-cancelled
}

// TestInformational: 1xx answers (103 Early Hints) go out before the final one, with their
// fields; Expect: 100-continue is answered when the handler reads the body.
func TestInformational(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})}
	addr := serve(t, s)
	var got []int
	var hints textproto.MIMEHeader
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, code)
		if code == 103 {
			hints = h
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, "http://"+addr+"/", strings.NewReader("body"))
	resp, err := h2c(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "body" || len(got) != 1 || got[0] != 103 || hints.Get("Link") == "" {
		t.Errorf("body %q, 1xx %v %v", b, got, hints)
	}

	r := dialRaw(t, addr)
	r.headers(1, false, ":method", "POST", ":scheme", "http", ":path", "/", "expect", "100-continue")
	if status, _ := r.answer(1); status != "103" {
		t.Fatalf("first: %q", status)
	}
	if status, _ := r.answer(1); status != "100" {
		t.Fatalf("second: %q, want 100 Continue once the handler reads", status)
	}
	_ = r.fr.WriteData(1, true, []byte("x"))
	if status, _ := r.answer(1); status != "200" {
		t.Fatalf("final: %q", status)
	}
}

// TestConnect: CONNECT reaches the handler with its authority, and the stream carries
// bytes both ways.
func TestConnect(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != "db.test:5432" || r.URL.Host != "db.test:5432" || r.RequestURI != "db.test:5432" {
			http.Error(w, "bad connect "+r.Host, 400)
			return
		}
		echo(w, r)
	})}
	r := dialRaw(t, serve(t, s))
	r.headers(1, false, ":method", "CONNECT", ":authority", "db.test:5432")
	if status, _ := r.answer(1); status != "200" {
		t.Fatalf("status %q", status)
	}
	expectEcho(t, r, 1)
}

// TestExtendedConnect: RFC 8441 (WebSocket over HTTP/2): :protocol reaches the handler as
// net/http gives it (the ":protocol" header), and the stream carries bytes both ways.
func TestExtendedConnect(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Header.Get(":protocol") != "websocket" || r.URL.Path != "/chat" || r.Host != "ws.test" {
			http.Error(w, "bad extended connect", 400)
			return
		}
		echo(w, r)
	})}
	r := dialRaw(t, serve(t, s))
	if r.settings[http2.SettingEnableConnectProtocol] != 1 {
		t.Fatal("SETTINGS_ENABLE_CONNECT_PROTOCOL not announced")
	}
	r.headers(1, false, ":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":path", "/chat", ":authority", "ws.test")
	if status, _ := r.answer(1); status != "200" {
		t.Fatalf("status %q", status)
	}
	expectEcho(t, r, 1)
}

// echo answers 200 and sends back what the stream brings, flushing each piece.
func echo(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(200)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 1024)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
			if rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// expectEcho sends two pieces on stream id, each echoed before the next, then ends it.
func expectEcho(t *testing.T, r *raw, id uint32) {
	t.Helper()
	for _, piece := range []string{"ping-1", "ping-2"} {
		_ = r.fr.WriteData(id, false, []byte(piece))
		f := r.next()
		d, ok := f.(*http2.DataFrame)
		if !ok || string(d.Data()) != piece {
			t.Fatalf("echo of %q: %v", piece, f)
		}
	}
	_ = r.fr.WriteData(id, true, nil)
	for f := r.next(); f != nil; f = r.next() {
		if d, ok := f.(*http2.DataFrame); ok && d.StreamEnded() {
			return
		}
	}
	t.Fatal("the stream did not end")
}

// TestResponseController: Flush goes through http.ResponseController; deadlines are not
// supported.
func TestResponseController(t *testing.T) {
	errs := make(chan [2]error, 1)
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		errs <- [2]error{rc.Flush(), rc.SetWriteDeadline(time.Time{})}
	})}
	resp, err := h2c(t).Get("http://" + serve(t, s) + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	e := <-errs
	if e[0] != nil {
		t.Errorf("Flush: %v", e[0])
	}
	if !errors.Is(e[1], http.ErrNotSupported) {
		t.Errorf("SetWriteDeadline: %v", e[1])
	}
}
