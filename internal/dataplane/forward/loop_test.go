package forward_test

import (
	"bufio"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// TestLoopByHopMarker: a route whose cluster is the proxy itself sends the request back
// to the same listener; the second pass finds its own x-lucid-hops token and answers 508
// DPE, which the first pass returns to the client. Two passes, not thousands.
func TestLoopByHopMarker(t *testing.T) {
	e := newEnv(t, routes(toCluster("self")))
	e.clusters["self"] = static("self", strings.TrimPrefix(e.url, "http://"))
	e.apply()
	got := e.get("/loop")
	inner, outer := e.info(), e.info()
	if got.code != http.StatusLoopDetected || !strings.HasPrefix(got.hdr.Get("X-Lucid-Error"), "DPE: forwarding loop: this request already passed listener 0.0.0.0_9080") {
		t.Fatalf("got %d, x-lucid-error %q", got.code, got.hdr.Get("X-Lucid-Error"))
	}
	if inner.Flags != streaminfo.DownstreamProtocolError || inner.ResponseCodeDetails != "forwarding_loop_detected" || outer.ResponseCodeDetails != "via_upstream" {
		t.Fatalf("records: inner %v %s, outer %v %s", inner.Flags, inner.ResponseCodeDetails, outer.Flags, outer.ResponseCodeDetails)
	}
	select {
	case i := <-e.infos:
		t.Fatalf("a third pass: %+v", i)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestTooManyHops: a request that crossed 32 listeners is answered 508.
func TestTooManyHops(t *testing.T) {
	e := newEnv(t, routes(toCluster("c")), static("c", backend(t, func(w http.ResponseWriter, _ *http.Request) {})))
	req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
	req.Host = "svc:9080"
	req.Header.Set("X-Lucid-Hops", strings.TrimSuffix(strings.Repeat("x, ", 32), ", "))
	got := e.do(e.h1, req)
	if got.code != http.StatusLoopDetected || !strings.Contains(got.hdr.Get("X-Lucid-Error"), "crossed 32 proxy listeners") {
		t.Fatalf("got %d %q", got.code, got.hdr.Get("X-Lucid-Error"))
	}
	e.info()
}

// TestBrokenBodyCutsTheUpstream: a chunked body whose framing breaks while it is
// forwarded (the upstream is reading it) is answered 400 DPE at once, the connection
// closes, and the upstream request ends.
func TestBrokenBodyCutsTheUpstream(t *testing.T) {
	reading := make(chan struct{})
	ended := make(chan error, 1)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		_, _ = io.ReadFull(r.Body, buf)
		close(reading)
		_, err := io.Copy(io.Discard, r.Body)
		ended <- err
	})
	e := newEnv(t, routes(toCluster("c")), static("c", up))
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: svc:9080\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	<-reading
	_, _ = io.WriteString(c, "zz\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || string(b) != "Bad Request" || !resp.Close ||
		!strings.HasPrefix(resp.Header.Get("X-Lucid-Error"), "DPE: the request body's framing is broken") {
		t.Fatalf("got %d %q close=%v x-lucid-error %q", resp.StatusCode, b, resp.Close, resp.Header.Get("X-Lucid-Error"))
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection stayed open")
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the upstream read a complete body")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request is still open")
	}
	if info := e.info(); info.Flags != streaminfo.DownstreamProtocolError || info.ResponseCode != 400 || info.ResponseCodeDetails != "http1.codec_error" {
		t.Fatalf("record: %d %v %s", info.ResponseCode, info.Flags, info.ResponseCodeDetails)
	}
}

// TestDefaultConnectionBound: a cluster without a connection limit (Istio's 2^32-1) is
// bounded by Envoy's default max_connections: with every connection busy, one more
// request gets 503 UO at once instead of a new connection. (The bound is lowered from
// 1024 to 3 for the test.)
func TestDefaultConnectionBound(t *testing.T) {
	defer forward.SetDefaultMaxConnections(3)()
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(3)
	up := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started.Done()
			<-release
		}
	})
	c := static("c", up)
	c.MaxConnections = math.MaxUint32
	e := newEnv(t, routes(toCluster("c")), c)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, e.url+"/hold", nil)
			req.Host = "svc:9080"
			resp, err := e.h1.Do(req)
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	started.Wait()
	got := e.get("/one-more")
	close(release)
	wg.Wait()
	if got.code != http.StatusServiceUnavailable || !strings.HasPrefix(got.hdr.Get("X-Lucid-Error"), "UO: cluster c has 3 connections, all busy") {
		t.Fatalf("got %d %q", got.code, got.hdr.Get("X-Lucid-Error"))
	}
	if after := e.get("/after"); after.code != http.StatusOK {
		t.Fatalf("once the connections are free: %d %q", after.code, after.hdr.Get("X-Lucid-Error"))
	}
}
