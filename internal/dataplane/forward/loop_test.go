package forward_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

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
