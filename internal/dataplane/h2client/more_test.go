package h2client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// A connection without streams for IdleTimeout closes (the state hook hears it); one
// with a stream open stays.
func TestIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
	})
	changed := make(chan struct{}, 16)
	cc := dial(t, addr, Config{IdleTimeout: 20e6, StateHook: func(*ClientConn) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}})
	held := make(chan error, 1)
	go func() {
		held <- roundTripErr(cc, newReq(context.Background(), t, http.MethodGet, "http://"+addr+"/hold", nil))
	}()
	for openStreams(cc) == 0 {
		runtime.Gosched()
	}
	// Several idle timeouts pass with the stream open: the connection stays.
	for range 3 {
		cc.idleCheck()
		if cc.Err() != nil {
			t.Fatalf("closed with a stream open: %v", cc.Err())
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for cc.Err() == nil {
		<-changed
	}
	if !errors.Is(cc.Err(), ErrClosed) {
		t.Fatalf("closed with %v, want ErrClosed", cc.Err())
	}
}

// A request body that does not match its Content-Length fails the request, and the
// stream is reset rather than ended early or late.
func TestRequestBodyLengthMismatch(t *testing.T) {
	addr := startServer(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})
	cc := dial(t, addr, Config{})
	for _, tt := range []struct {
		name string
		cl   int64
		body string
		want string
	}{
		{"short, small", 10, "abc", "unexpected EOF"},
		{"short, streamed", 100 << 10, "abc", "shorter than its Content-Length"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := newReq(t.Context(), t, http.MethodPost, "http://"+addr+"/", io.MultiReader(strings.NewReader(tt.body)))
			req.ContentLength = tt.cl
			err := roundTripErr(cc, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
	if err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)); err != nil {
		t.Fatalf("connection unusable afterwards: %v", err)
	}
}

// A request waiting for a stream slot (the server's limit reached) ends with its context.
func TestCancelWhileWaitingForStream(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	addr := startServer(t, 1, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	cc := dial(t, addr, Config{})
	go func() { <-entered; release <- struct{}{} }()
	// A first answer: the server's SETTINGS (limit 1), sent before it, have been read.
	if err := roundTripErr(cc, newReq(t.Context(), t, http.MethodGet, "http://"+addr+"/", nil)); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		held <- roundTripErr(cc, newReq(context.Background(), t, http.MethodGet, "http://"+addr+"/", nil))
	}()
	<-entered
	if n := cc.Available(); n != 0 {
		t.Fatalf("Available %d with the server's only stream open", n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	waiting := make(chan error, 1)
	go func() { waiting <- roundTripErr(cc, newReq(ctx, t, http.MethodGet, "http://"+addr+"/", nil)) }()
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) || HeadersWritten(err) {
		t.Fatalf("error %v, want context.Canceled before anything was written", err)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}
