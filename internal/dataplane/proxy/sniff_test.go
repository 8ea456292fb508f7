package proxy

import (
	"crypto/tls"
	"net"
	"reflect"
	"testing"
	"time"
)

func TestSniff(t *testing.T) {
	hello := clientHelloBytes(t, &tls.Config{ServerName: "api.example.com", NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	for _, tc := range []struct {
		name string
		in   string
		want Connection
	}{
		{"HTTP/1.1 request line", "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer", ApplicationProtocols: []string{"http/1.1"}}},
		{"HTTP/1.0 with a bare LF", "POST http://a/b HTTP/1.0\n", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer", ApplicationProtocols: []string{"http/1.0"}}},
		{"HTTP/2 preface", h2Preface + "\x00\x00\x00\x04", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer", ApplicationProtocols: []string{"h2c"}}},
		{"TLS ClientHello: SNI and ALPN", string(hello), Connection{DestinationPort: 80, ServerName: "api.example.com", TransportProtocol: "tls", ApplicationProtocols: []string{"http/1.1"}}},
		{"a database's binary greeting", "\x00\x00\x00\x08\x04\xd2\x16\x2f", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer"}},
		{"HTTP/2.0 on a request line is not HTTP/1", "GET / HTTP/2.0\r\n", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer"}},
		{"a space in the method", "G T / HTTP/1.1\r\n", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer"}},
		{"SMTP-like text", "EHLO client.example.com\r\n", Connection{DestinationPort: 80, TransportProtocol: "raw_buffer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, and one byte at a time: the answer comes as soon as it is known and is
			// the same either way.
			s, done, err := sniff([]byte(tc.in))
			if err != nil || !done {
				t.Fatalf("sniff: done %t, %v", done, err)
			}
			if got := s.connection(80); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for n := 1; n <= len(tc.in); n++ {
				s, done, err := sniff([]byte(tc.in[:n]))
				if err != nil {
					t.Fatal(err)
				}
				if done {
					if got := s.connection(80); !reflect.DeepEqual(got, tc.want) {
						t.Fatalf("after %d bytes: %+v, want %+v", n, got, tc.want)
					}
					return
				}
			}
			t.Fatal("never decided byte by byte")
		})
	}
}

// A connection that says only part of a request line and closes is opaque, with its bytes
// kept for the TCP chain; one that says nothing is an error (nothing to proxy).
func TestPeekProtocolAtEOF(t *testing.T) {
	for _, tc := range []struct {
		send    string
		wantErr bool
	}{{"GET /x HT", false}, {"", true}} {
		a, b := net.Pipe()
		go func() { _, _ = b.Write([]byte(tc.send)); b.Close() }()
		s, buf, err := peekProtocol(a, time.Second)
		a.Close()
		if (err != nil) != tc.wantErr || string(buf) != tc.send || s.app != "" || s.hello.tls {
			t.Errorf("%q: %+v %q %v", tc.send, s, buf, err)
		}
	}
}

func FuzzSniff(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte(h2Preface))
	f.Add([]byte("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"))
	f.Add([]byte("\x00\x01binary"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, done, err := sniff(b)
		if err != nil {
			return
		}
		if !done {
			return
		}
		// A decided answer does not change with more bytes.
		s2, done2, err2 := sniff(append(b[:len(b):len(b)], "more bytes\r\n"...))
		if err2 == nil && done2 && !reflect.DeepEqual(s.connection(1), s2.connection(1)) && !s.hello.tls {
			t.Fatalf("%q: %+v, then %+v with more bytes", b, s, s2)
		}
	})
}
