// Command gofloor is about the least a Go HTTP/1.1 proxy can do per request, as a peer in
// bench/saturate.sh. For each client connection it keeps one upstream connection; for each
// request it reads the head (a request without a body), writes its bytes unchanged
// upstream, reads the answer's head and its Content-Length bytes, and writes them back
// unchanged. It finds the end of each head and the answer's Content-Length, nothing more:
// no header changes, no routing, no checks, no timeouts, no metrics. Not a proxy to run.
//
// It reads and writes through the same socket layer as Lucid (internal/dataplane/sockio:
// non-blocking system calls, the runtime's network poller), one goroutine per client
// connection, so its CPU per request at saturation is what Go, the runtime and the kernel
// cost on this machine before any of the work a proxy does; Lucid's figure minus this one
// is what Lucid's features and layers cost.
//
// With -peek it also checks the upstream connection before each request as Lucid's pool
// does (a non-blocking MSG_PEEK: has the server closed it, or sent anything, while it was
// idle?), one more system call per request: the floor with Lucid's keep-alive race check.
//
//	gofloor -listen 127.0.0.1:8080 -upstream 127.0.0.1:9090 [-peek]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

func main() {
	listen := flag.String("listen", "", "address to serve on")
	upstream := flag.String("upstream", "", "host:port of the upstream")
	peek := flag.Bool("peek", false, "check the upstream connection (MSG_PEEK) before each request")
	flag.Parse()
	if *listen == "" || *upstream == "" {
		fmt.Fprintln(os.Stderr, "gofloor: -listen and -upstream are required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("gofloor: %v", err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatalf("gofloor: %v", err)
		}
		go serve(c, *upstream, *peek)
	}
}

var endOfHead = []byte("\r\n\r\n")

// serve proxies c's requests one at a time until either side closes or sends what it
// does not handle (a head or an answer larger than its buffer, an answer without a
// Content-Length).
func serve(c net.Conn, upstream string, peek bool) {
	defer c.Close()
	client := sockio.Wrap(c)
	var up net.Conn
	var check func() bool // -peek: the idle upstream connection is still open and quiet
	defer func() {
		if up != nil {
			_ = up.Close()
		}
	}()
	in := make([]byte, 16<<10)
	out := make([]byte, 64<<10)
	n := 0
	for {
		end := bytes.Index(in[:n], endOfHead)
		for end < 0 {
			if n == len(in) {
				return
			}
			m, err := client.Read(in[n:])
			if err != nil {
				return
			}
			n += m
			end = bytes.Index(in[:n], endOfHead)
		}
		end += len(endOfHead)
		if up == nil {
			uc, err := net.Dial("tcp", upstream)
			if err != nil {
				log.Printf("gofloor: %v", err)
				return
			}
			if peek {
				check = idleCheck(uc)
			}
			up = sockio.Wrap(uc)
		} else if check != nil && !check() {
			return
		}
		if _, err := up.Write(in[:end]); err != nil {
			return
		}
		n = copy(in, in[end:n])

		k, total := 0, -1
		for total < 0 || k < total {
			if k == len(out) {
				return
			}
			m, err := up.Read(out[k:])
			if err != nil {
				return
			}
			k += m
			if total < 0 {
				if h := bytes.Index(out[:k], endOfHead); h >= 0 {
					cl := contentLength(out[:h])
					if cl < 0 {
						return
					}
					total = h + len(endOfHead) + cl
				}
			}
		}
		if k > total { // bytes after the answer: not an upstream this handles
			return
		}
		if _, err := client.Write(out[:total]); err != nil {
			return
		}
	}
}

// contentLength is the value of the Content-Length field in head (any case), or -1.
func contentLength(head []byte) int {
	const name = "\r\ncontent-length:"
	for i := 0; i+len(name) <= len(head); i++ {
		if head[i] != '\r' || !bytes.EqualFold(head[i:i+len(name)], []byte(name)) {
			continue
		}
		v := head[i+len(name):]
		if end := bytes.Index(v, []byte("\r\n")); end >= 0 {
			v = v[:end]
		}
		n, ok := http1.ParseLength(bytes.Trim(v, " \t"))
		if !ok {
			return -1
		}
		return int(n)
	}
	return -1
}

// idleCheck returns a check of c that peeks at its socket without blocking, inside the
// runtime's read wait as Lucid's pool does: true when nothing arrived (EAGAIN).
func idleCheck(c net.Conn) func() bool {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	var b [1]byte
	var perr error
	fn := func(fd uintptr) bool {
		_, perr = sockio.Peek(fd, b[:])
		return true
	}
	return func() bool {
		if err := rc.Read(fn); err != nil {
			return false
		}
		return errors.Is(perr, syscall.EAGAIN)
	}
}
