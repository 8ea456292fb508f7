package h2client

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchServerEnv makes the test binary the benchmark's upstream (TestBenchServer), so the
// benchmark's allocations and CPU time are the client's alone.
const benchServerEnv = "H2CLIENT_BENCH_SERVER"

// TestBenchServer is BenchmarkRoundTrip's upstream when run as its helper process: an h2c
// server (net/http's) on a loopback port it prints, until its stdin closes.
func TestBenchServer(t *testing.T) {
	if os.Getenv(benchServerEnv) == "" {
		t.Skip("the upstream process of BenchmarkRoundTrip; runs only as its helper")
	}
	srv := &http.Server{Protocols: new(http.Protocols), ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "hello, world")
		})}
	srv.Protocols.SetUnencryptedHTTP2(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
}

// benchUpstream starts TestBenchServer in a process of its own and returns its address.
func benchUpstream(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchServer$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench upstream: %v", err)
	}
	return strings.TrimSpace(line)
}

// roundTripper is what both clients offer.
type roundTripper interface {
	RoundTrip(*http.Request) (*http.Response, error)
	Close() error
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRoundTrip compares h2client with net/http's ClientConn for the same requests
// to the same upstream (net/http's h2c server, in another process): a GET and a POST with
// a small body, one at a time and from parallel goroutines on one connection. Besides
// ns/op (wall clock, the upstream's time included) it reports cpu-ns/op, the client
// process's CPU time per request; allocs/op are the client's (and the request's making).
func BenchmarkRoundTrip(b *testing.B) {
	addr := benchUpstream(b)
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
				cpu := cpuTime()
				for b.Loop() {
					one(b, rt, buf)
				}
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
			b.Run(c.name+"/"+method+"/parallel", func(b *testing.B) {
				rt := c.dial(b)
				b.ReportAllocs()
				cpu := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					buf := make([]byte, 512)
					for pb.Next() {
						one(b, rt, buf)
					}
				})
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
