package h2client

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzServerBytes feeds a request's connection whatever bytes a server might send (after
// its SETTINGS) and closes it: RoundTrip and the body read end with a response or an
// error, never a panic or a hang.
func FuzzServerBytes(f *testing.F) {
	frame := func(write func(fr *http2.Framer)) []byte {
		var b bytes.Buffer
		write(http2.NewFramer(&b, nil))
		return b.Bytes()
	}
	block := func(fields ...string) []byte {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return b.Bytes()
	}
	f.Add(frame(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200", "content-length", "2"), EndHeaders: true})
		_ = fr.WriteData(1, true, []byte("ok"))
	}))
	f.Add(frame(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "100"), EndHeaders: true})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block(":status", "200"), EndHeaders: true})
		_ = fr.WriteData(1, false, []byte("x"))
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("grpc-status", "0"), EndStream: true, EndHeaders: true})
	}))
	f.Add(frame(func(fr *http2.Framer) {
		_ = fr.WriteWindowUpdate(0, 1<<31-1)
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		_ = fr.WriteGoAway(0, http2.ErrCodeProtocol, []byte("x"))
	}))
	f.Add(frame(func(fr *http2.Framer) {
		_ = fr.WriteRSTStream(1, http2.ErrCodeRefusedStream)
		_ = fr.WritePing(false, [8]byte{1})
		_ = fr.WriteData(3, false, []byte("unknown stream"))
	}))
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		served := make(chan struct{})
		go func() {
			defer close(served)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			var settings bytes.Buffer
			_ = http2.NewFramer(&settings, nil).WriteSettings()
			_, _ = c.Write(append(settings.Bytes(), data...))
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c) // until the client closes
		}()
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		cc, err := NewClientConn(nc, Config{})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://fuzz/", nil)
		if resp, err := cc.RoundTrip(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		_ = cc.Close()
		<-served
	})
}
