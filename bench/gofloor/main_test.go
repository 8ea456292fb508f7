package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestContentLength(t *testing.T) {
	for head, want := range map[string]int{
		"HTTP/1.1 200 OK\r\nContent-Length: 1024":               1024,
		"HTTP/1.1 200 OK\r\ncontent-length:7\r\nServer: x":      7,
		"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: \t0":                0,
		"HTTP/1.1 200 OK\r\nServer: x":                          -1,
		"HTTP/1.1 200 OK\r\nX-Content-Length: 5":                -1,
		"HTTP/1.1 200 OK\r\nContent-Length: abc":                -1,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: b": -1,
	} {
		if got := contentLength([]byte(head)); got != want {
			t.Errorf("contentLength(%q) = %d, want %d", head, got, want)
		}
	}
}

// TestProxiesRequests sends three requests on one connection through serve to a real
// HTTP server and reads each answer whole.
func TestProxiesRequests(t *testing.T) {
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "answer to "+r.URL.Path)
	})}
	go func() { _ = srv.Serve(upLn) }()
	defer srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, peek := range []bool{false, true} {
		go func() {
			c, err := ln.Accept()
			if err == nil {
				serve(c, upLn.Addr().String(), peek)
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		for _, p := range []string{"/a", "/bb", "/ccc"} {
			if _, err := io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("peek %v, %s: %v", peek, p, err)
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || string(b) != "answer to "+p {
				t.Fatalf("peek %v, %s: %q, %v", peek, p, b, err)
			}
		}
		_ = c.Close()
	}
}
