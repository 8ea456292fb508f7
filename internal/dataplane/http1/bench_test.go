package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// streamConn is a net.Conn reading a fixed stream.
type streamConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// benchStream is 100 keep-alive requests as a typical client sends them: a GET with a few
// headers, and a POST with a small body.
func benchStream() []byte {
	var b strings.Builder
	for i := range 50 {
		b.WriteString("GET /api/v1/items/" + itoa(i) + " HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nX-Request-Id: 6e2f7d2c-3c1b-4d55-9a5e-0d1b8c9f7a10\r\n\r\n")
		b.WriteString("POST /api/v1/items HTTP/1.1\r\nHost: reviews:9080\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"name\":\"item\",\"count\":42}")
	}
	return []byte(b.String())
}

func readAll(b *testing.B, r io.Reader) {
	b.Helper()
	br := bufio.NewReader(r)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
	}
}

// BenchmarkReadRequests measures net/http reading 100 requests from a connection, with
// and without the Conn in front: the Conn's cost per request is the difference / 100.
func BenchmarkReadRequests(b *testing.B) {
	stream := benchStream()
	b.Run("net/http alone", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			readAll(b, &streamConn{r: bytes.NewReader(stream)})
		}
	})
	b.Run("through http1.Conn", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			readAll(b, NewConn(&streamConn{r: bytes.NewReader(stream)}, Limits{}, nil))
		}
	})
}
