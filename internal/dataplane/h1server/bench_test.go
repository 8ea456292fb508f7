package h1server_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
)

// BenchmarkServe is one GET at a time answered with 1 KiB, by h1server and by net/http
// (allocs/op: the server's and the handler's; the client reads with http.ReadResponse).
func BenchmarkServe(b *testing.B) {
	payload := strings.Repeat("x", 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1024")
		_, _ = io.WriteString(w, payload)
	})
	for _, tc := range []struct {
		name  string
		serve func(net.Listener)
	}{
		{"h1server", func(ln net.Listener) { _ = (&h1server.Server{Handler: h}).Serve(ln) }},
		{"nethttp", func(ln net.Listener) { _ = (&http.Server{Handler: h, ReadHeaderTimeout: time.Minute}).Serve(ln) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go tc.serve(ln)
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) == 2 {
						break
					}
				}
				if _, err := io.ReadFull(br, buf[:1024]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
