// Command saturate is the closed-loop HTTP/1.1 load of bench/saturate.sh: C keep-alive
// connections, each sending the next GET as soon as the previous answer has arrived, for
// a duration; it prints the number of answers (status 200 with the whole body) and
// errors. It parses answers with as little work as it can (Content-Length bodies only),
// so that the load costs little CPU beside the proxy measured.
//
//	saturate -url 127.0.0.1:8080/echo -c 16 -d 10s
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("url", "", "host:port/path to GET")
	conns := flag.Int("c", 16, "connections")
	dur := flag.Duration("d", 10*time.Second, "duration")
	flag.Parse()
	addr, path, ok := strings.Cut(*target, "/")
	if !ok || addr == "" {
		fmt.Fprintln(os.Stderr, "saturate: -url host:port/path")
		os.Exit(2)
	}
	req := []byte("GET /" + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	var done, failed atomic.Int64
	stop := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if err := run(addr, req, stop, &done); err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("requests %d errors %d seconds %.3f\n", done.Load(), failed.Load(), dur.Seconds())
}

// run sends requests on one connection until stop.
func run(addr string, req []byte, stop time.Time, done *atomic.Int64) error {
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
		if err := readAnswer(br); err != nil {
			return err
		}
		done.Add(1)
	}
	return nil
}

var errStatus = errors.New("status not 200")

func readAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return errStatus
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
			n, err = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil {
				return err
			}
		}
	}
	if n < 0 {
		return errors.New("no Content-Length")
	}
	_, err = br.Discard(n)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}
