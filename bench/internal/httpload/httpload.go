// Package httpload is the closed-loop HTTP/1.1 load of the benchmarks (bench/saturate,
// bench/mtls): Conns connections, each sending the next request as soon as the previous
// answer has arrived, for a duration. Keep-alive: every connection stays open for the
// whole run; NewConn: every request on its own connection, closed by the client once the
// answer is read. It parses answers with as little work as it can (Content-Length bodies
// only), so that the load costs little CPU beside the proxy measured.
package httpload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options are one run's.
type Options struct {
	Addr     string        // host:port to connect to
	Head     string        // the request's head without its final CRLF: request line and headers
	Conns    int           // concurrent connections
	Duration time.Duration // how long
	NewConn  bool          // a connection per request (Connection: close is added)
	BodySize int           // the answer's length every answer must have; 0: any
}

// Result is what the clients saw.
type Result struct {
	OK, Failed int64  // answers with status 200 and the whole body; failures
	FirstErr   string // the first failure, "" without
}

// Run sends requests until o.Duration has passed. A failed connection is counted and
// retried after 10 ms.
func Run(o Options) Result {
	req := []byte(o.Head + "\r\n")
	if o.NewConn {
		req = []byte(o.Head + "Connection: close\r\n\r\n")
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	for range o.Conns {
		wg.Go(func() {
			for time.Now().Before(stop) {
				var err error
				if o.NewConn {
					if err = OneShot(o.Addr, req, o.BodySize, stop); err == nil {
						ok.Add(1)
					}
				} else {
					err = keepAlive(o.Addr, req, o.BodySize, stop, &ok)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	r := Result{OK: ok.Load(), Failed: failed.Load()}
	r.FirstErr, _ = firstErr.Load().(string)
	return r
}

// keepAlive sends requests on one connection until stop.
func keepAlive(addr string, req []byte, size int, stop time.Time, done *atomic.Int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(stop.Add(5 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	for time.Now().Before(stop) {
		if _, err := c.Write(req); err != nil {
			return err
		}
		if err := readAnswer(br, size); err != nil {
			return err
		}
		done.Add(1)
	}
	return nil
}

// OneShot sends req (a whole request) on a new connection and closes it once the answer
// is in; the connection gives up at deadline.
func OneShot(addr string, req []byte, size int, deadline time.Time) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline.Add(5 * time.Second))
	if _, err := c.Write(req); err != nil {
		return err
	}
	return readAnswer(bufio.NewReaderSize(c, 4<<10), size)
}

var errStatus = errors.New("status not 200")

// readAnswer reads one answer with a Content-Length body (of size bytes unless 0).
func readAnswer(br *bufio.Reader, size int) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("%w: %q", errStatus, bytes.TrimSpace(line))
	}
	n := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 16 && (line[0] == 'C' || line[0] == 'c') && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			if n, err = strconv.Atoi(string(bytes.TrimSpace(line[15:]))); err != nil {
				return err
			}
		}
	}
	switch {
	case n < 0:
		return errors.New("no Content-Length")
	case size > 0 && n != size:
		return fmt.Errorf("answer of %d bytes, want %d", n, size)
	}
	_, err = br.Discard(n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
