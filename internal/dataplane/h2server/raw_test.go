package h2server_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// raw is a hand-driven HTTP/2 client, for what a well-behaved one never sends.
type raw struct {
	t    testing.TB
	c    net.Conn
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder
	// settings is the server's first SETTINGS.
	settings map[http2.SettingID]uint32
}

func dialRaw(t testing.TB, addr string) *raw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := &raw{t: t, c: c, fr: http2.NewFramer(c, c), settings: map[http2.SettingID]uint32{}}
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.enc = hpack.NewEncoder(&r.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := r.fr.ReadFrame()
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first frame from the server: %v %v", f, err)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { r.settings[s.ID] = s.Val; return nil })
	_ = r.fr.WriteSettingsAck()
	return r
}

// next reads a frame, skipping WINDOW_UPDATE and SETTINGS acks; nil at the end of the
// connection.
func (r *raw) next() http2.Frame {
	r.t.Helper()
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				return nil
			}
			r.t.Fatalf("reading a frame: %v", err)
		}
		switch f := f.(type) {
		case *http2.WindowUpdateFrame:
			continue
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			_ = r.fr.WriteSettingsAck()
			continue
		}
		return f
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne)
}

// headers sends a header block of the fields given as name, value pairs.
func (r *raw) headers(id uint32, end bool, kv ...string) {
	r.t.Helper()
	r.hbuf.Reset()
	for i := 0; i < len(kv); i += 2 {
		_ = r.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hbuf.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		r.t.Fatal(err)
	}
}

// get sends a GET for path on stream id.
func (r *raw) get(id uint32, path string, extra ...string) {
	r.headers(id, true, append([]string{":method", "GET", ":scheme", "http", ":authority", "a.test", ":path", path}, extra...)...)
}

// answer reads frames until stream id's head or reset: the status (0 when reset) and
// the reset's code.
func (r *raw) answer(id uint32) (status string, code http2.ErrCode) {
	r.t.Helper()
	for {
		f := r.next()
		if f == nil {
			r.t.Fatalf("connection ended before stream %d was answered", id)
		}
		if f.Header().StreamID != id {
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			return f.PseudoValue("status"), 0
		case *http2.RSTStreamFrame:
			return "", f.ErrCode
		}
	}
}

// answerField reads frames until stream id's head: its status and its first value of the
// (lowercase) field name, as "status value".
func (r *raw) answerField(id uint32, name string) string {
	r.t.Helper()
	for {
		f := r.next()
		if f == nil {
			r.t.Fatalf("connection ended before stream %d was answered", id)
		}
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok || h.StreamID != id {
			continue
		}
		for _, hf := range h.RegularFields() {
			if hf.Name == name {
				return h.PseudoValue("status") + " " + hf.Value
			}
		}
		return h.PseudoValue("status") + " "
	}
}

// goAway reads frames until GOAWAY (nil: the connection ended without one).
func (r *raw) goAway() *http2.GoAwayFrame {
	r.t.Helper()
	for {
		f := r.next()
		if f == nil {
			return nil
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g
		}
	}
}
