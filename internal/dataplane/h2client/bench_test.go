package h2client

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// roundTripper is what both clients offer.
type roundTripper interface {
	RoundTrip(*http.Request) (*http.Response, error)
	Close() error
}

// BenchmarkRoundTrip compares h2client with net/http's ClientConn for the same requests
// to the same server (golang.org/x/net/http2, h2c): a GET and a POST with a small body,
// one at a time and from parallel goroutines on one connection.
func BenchmarkRoundTrip(b *testing.B) {
	addr := startServer(b, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello, world")
	})
	clients := []struct {
		name string
		dial func(b *testing.B) roundTripper
	}{
		{"h2client", func(b *testing.B) roundTripper { b.Helper(); return dial(b, addr, Config{}) }},
		{"nethttp", func(b *testing.B) roundTripper {
			b.Helper()
			t := &http.Transport{Protocols: new(http.Protocols), DisableCompression: true}
			t.Protocols.SetUnencryptedHTTP2(true)
			cc, err := t.NewClientConn(context.Background(), "http", addr)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = cc.Close() })
			return cc
		}},
	}
	const post = "a small request body of some sixty bytes, as an API call has"
	for _, c := range clients {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			one := func(b *testing.B, rt roundTripper, buf []byte) {
				b.Helper()
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader(post)
				}
				req, _ := http.NewRequest(method, "http://"+addr+"/", body)
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				_ = resp.Body.Close()
			}
			b.Run(c.name+"/"+method, func(b *testing.B) {
				rt := c.dial(b)
				buf := make([]byte, 512)
				b.ReportAllocs()
				for b.Loop() {
					one(b, rt, buf)
				}
			})
			b.Run(c.name+"/"+method+"/parallel", func(b *testing.B) {
				rt := c.dial(b)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, 512)
					for pb.Next() {
						one(b, rt, buf)
					}
				})
			})
		}
	}
}
