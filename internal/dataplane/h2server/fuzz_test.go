package h2server_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// FuzzFrames feeds raw bytes after the client preface and SETTINGS: the server must not
// crash, and the connection must end once the client stops sending (answered or closed).
func FuzzFrames(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(seed)
	}
	s := &h2server.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-T")
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
		w.Header().Set("X-T", "t")
	}), Config: &http.HTTP2Config{MaxConcurrentStreams: 4}, MaxHeaderBytes: 2048}
	addr := serve(f, s)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var pre bytes.Buffer
		pre.WriteString(http2.ClientPreface)
		_ = http2.NewFramer(&pre, nil).WriteSettings()
		go func() {
			_, _ = c.Write(append(pre.Bytes(), in...))
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the connection did not end: %v", err)
		}
	})
}

func fuzzSeeds() [][]byte {
	var out [][]byte
	frames := func(write func(fr *http2.Framer, enc func(kv ...string) []byte)) []byte {
		var b, hb bytes.Buffer
		fr := http2.NewFramer(&b, nil)
		he := hpack.NewEncoder(&hb)
		write(fr, func(kv ...string) []byte {
			hb.Reset()
			for i := 0; i < len(kv); i += 2 {
				_ = he.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
			}
			return append([]byte(nil), hb.Bytes()...)
		})
		return b.Bytes()
	}
	get := []string{":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/"}
	post := []string{":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/p", "content-length", "3"}
	out = append(out,
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(get...), EndStream: true, EndHeaders: true})
		}),
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(post...), EndHeaders: true})
			_ = fr.WriteData(1, false, []byte("ab"))
			_ = fr.WriteWindowUpdate(0, 100)
			_ = fr.WriteData(1, true, []byte("c"))
			_ = fr.WritePing(false, [8]byte{1})
		}),
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(post...), EndHeaders: true})
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc("x-trailer", "v"), EndStream: true, EndHeaders: true})
			_ = fr.WriteRSTStream(3, http2.ErrCodeCancel)
			_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		}),
		frames(func(fr *http2.Framer, enc func(...string) []byte) {
			b := enc(":method", "CONNECT", ":protocol", "websocket", ":scheme", "http", ":authority", "a", ":path", "/ws")
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: b[:3], EndHeaders: false})
			_ = fr.WriteContinuation(5, true, b[3:])
			_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
			_ = fr.WriteData(5, true, []byte("hello"))
		}),
	)
	return out
}
