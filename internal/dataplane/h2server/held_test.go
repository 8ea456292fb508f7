package h2server_test

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// TestFramesArriveInPieces sends a request whose frames arrive cut at every awkward place
// (inside a frame's 9-byte header, inside its payload), with a header block that goes on
// in a CONTINUATION frame and a DATA frame larger than the server's read buffer: the
// reader, which waits inside the poller for whole frames (held.go), must put each frame
// together, read the large ones the usual way, and go on waiting afterwards.
func TestFramesArriveInPieces(t *testing.T) {
	s := &h2server.Server{
		Config: &http.HTTP2Config{MaxReadFrameSize: 1 << 20},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set("x-got", fmt.Sprintf("%s %d %08x", r.Header.Get("x-long"), len(b), crc32.ChecksumIEEE(b)))
		}),
	}
	r := dialRaw(t, serve(t, s))

	// The frames, built whole, then written in pieces.
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	long := string(bytes.Repeat([]byte("v"), 300))
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "a.test"}, {Name: ":path", Value: "/up"},
		{Name: "x-long", Value: long},
	} {
		_ = enc.WriteField(f)
	}
	block := hb.Bytes()
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:20]})
	_ = fr.WriteContinuation(1, true, block[20:])
	body := make([]byte, 0, 30000)
	for i := range 30000 {
		body = append(body, byte(i*7))
	}
	_ = fr.WriteData(1, false, body[:100])
	_ = fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	_ = fr.WriteData(1, false, body[100:25100]) // larger than the 16 KiB read buffer
	_ = fr.WriteData(1, false, body[25100:29995])
	_ = fr.WriteData(1, true, body[29995:])
	wire := out.Bytes()
	for len(wire) > 0 {
		n := min(len(wire), 1+len(wire)%13, 4+len(wire)%4096)
		if _, err := r.c.Write(wire[:n]); err != nil {
			t.Fatal(err)
		}
		wire = wire[n:]
		if len(wire)%7 == 0 {
			time.Sleep(2 * time.Millisecond) // lets the reader find the socket empty mid-frame
		}
	}

	want := fmt.Sprintf("200 %s %d %08x", long, len(body), crc32.ChecksumIEEE(body))
	pinged := false
	for !pinged || want != "" {
		f := r.next()
		switch f := f.(type) {
		case nil:
			t.Fatalf("the connection ended (answered: %v, pinged: %v)", want == "", pinged)
		case *http2.PingFrame:
			if !f.IsAck() || f.Data != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} {
				t.Fatalf("PING %v %v, want the ack of the one sent", f.IsAck(), f.Data)
			}
			pinged = true
		case *http2.MetaHeadersFrame:
			got := f.PseudoValue("status") + " "
			for _, hf := range f.RegularFields() {
				if hf.Name == "x-got" {
					got += hf.Value
				}
			}
			if got != want {
				t.Fatalf("stream %d answered %.60q…, want %.60q…", f.StreamID, got, want)
			}
			want = ""
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("%v", f)
		}
	}

	// After the large frame the reader waits inside the poller again: the next request,
	// sent whole, is answered.
	r.headers(3, false, ":method", "POST", ":scheme", "http", ":authority", "a.test", ":path", "/again", "x-long", "x")
	if err := r.fr.WriteData(3, true, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if got, want := r.answerField(3, "x-got"), fmt.Sprintf("200 x 3 %08x", crc32.ChecksumIEEE([]byte("abc"))); got != want {
		t.Fatalf("stream 3 answered %q, want %q", got, want)
	}
}

// A PING followed by the first bytes of another frame is answered without waiting for
// the rest of that frame: the client may wait for the answer before it sends more.
func TestPingAnsweredBeforeAPartialFrame(t *testing.T) {
	s := &h2server.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	r := dialRaw(t, serve(t, s))
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	_ = fr.WritePing(false, [8]byte{9})
	_ = fr.WritePing(false, [8]byte{10})
	wire := out.Bytes()
	if _, err := r.c.Write(wire[:len(wire)-3]); err != nil { // the first PING, most of the second
		t.Fatal(err)
	}
	for {
		f := r.next()
		if f == nil {
			t.Fatal("the connection ended before the PING was answered")
		}
		if p, ok := f.(*http2.PingFrame); ok {
			if !p.IsAck() || p.Data != [8]byte{9} {
				t.Fatalf("PING ack %v %v, want the ack of the first", p.IsAck(), p.Data)
			}
			break
		}
	}
	if _, err := r.c.Write(wire[len(wire)-3:]); err != nil {
		t.Fatal(err)
	}
	for {
		f := r.next()
		if f == nil {
			t.Fatal("the connection ended before the second PING was answered")
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == [8]byte{10} {
			return
		}
	}
}

// A connection the server's timer closes (here: told GOAWAY when idle, then closed a second
// later) while its reader is busy with the client's frames is closed all the same: the
// timer ends it under the connection's lock, which the reader, reading inside the
// poller's wait, takes for every frame, so a close that waited for that read would never
// return.
func TestClosedWhileFramesArrive(t *testing.T) {
	s := &h2server.Server{Handler: okHandler(), IdleTimeout: 20 * time.Millisecond}
	r := dialRaw(t, serve(t, s))
	var ping bytes.Buffer
	fr := http2.NewFramer(&ping, nil)
	for range 64 {
		_ = fr.WritePing(false, [8]byte{7})
	}
	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() { // PINGs without pause until the connection ends
		defer close(flooded)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := r.c.Write(ping.Bytes()); err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-flooded }()
	_ = r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	for {
		if _, err := r.fr.ReadFrame(); err != nil {
			if time.Since(start) > 15*time.Second {
				t.Fatalf("the connection did not close while frames kept coming: %v", err)
			}
			return
		}
	}
}
