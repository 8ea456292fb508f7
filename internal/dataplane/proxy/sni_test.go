package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// clientHelloBytes captures the ClientHello crypto/tls sends for cfg.
func clientHelloBytes(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(a, cfg).Handshake()
	}()
	var buf []byte
	chunk := make([]byte, 4096)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := b.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if _, perr := parseClientHello(buf); !errors.Is(perr, errNeedMore) || err != nil {
			break
		}
	}
	_ = b.Close()
	_ = a.Close()
	<-done
	return buf
}

func TestParseClientHello(t *testing.T) {
	full := clientHelloBytes(t, &tls.Config{ServerName: "api.example.com", NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	noSNI := clientHelloBytes(t, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	// The same hello split over two records, as a client may send it.
	body := full[5:]
	split := append([]byte{0x16, 3, 1, 0, 40}, body[:40]...)
	split = append(split, 0x16, 3, 1, byte((len(body)-40)>>8), byte(len(body)-40))
	split = append(split, body[40:]...)
	tests := []struct {
		name     string
		in       []byte
		want     clientHello
		wantErr  error
		wantTLS  bool
		wantALPN []string
	}{
		{name: "SNI and ALPN", in: full, want: clientHello{tls: true, serverName: "api.example.com"}, wantALPN: []string{"h2", "http/1.1"}},
		{name: "no SNI", in: noSNI, want: clientHello{tls: true}},
		{name: "two records", in: split, want: clientHello{tls: true, serverName: "api.example.com"}, wantALPN: []string{"h2", "http/1.1"}},
		{name: "truncated", in: full[:len(full)-3], wantErr: errNeedMore},
		{name: "header only", in: full[:3], wantErr: errNeedMore},
		{name: "plaintext HTTP", in: []byte("GET / HTTP/1.1\r\n"), wantErr: errNotTLS},
		{name: "not a ClientHello", in: []byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0}, wantErr: errNotTLS},
		{name: "SSL 2 style", in: []byte{0x16, 2, 0, 0, 4, 1, 0, 0, 0}, wantErr: errNotTLS},
		{name: "too large", in: []byte{0x16, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, wantErr: errHelloSize},
		{name: "body too short", in: []byte{0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}, wantErr: errNotTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseClientHello(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if got.tls != tt.want.tls || got.serverName != tt.want.serverName || !slices.Equal(got.alpn, tt.wantALPN) {
				t.Errorf("got %+v, want %+v alpn %q", got, tt.want, tt.wantALPN)
			}
		})
	}
}

func FuzzParseClientHello(f *testing.F) {
	f.Add(clientHelloBytes(f, &tls.Config{ServerName: "api.example.com", NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{0x16, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseClientHello(b)
		if err == nil && !h.tls {
			t.Fatal("a parsed hello must be TLS")
		}
		if err != nil && (h.serverName != "" || h.alpn != nil) {
			t.Fatal("a failed parse returned values")
		}
	})
}

func TestChainForConnection(t *testing.T) {
	chain := func(name string, m resource.FilterChainMatch) resource.FilterChain {
		return resource.FilterChain{Name: name, Match: m}
	}
	l := &resource.Listener{FilterChains: []resource.FilterChain{
		chain("exact", resource.FilterChainMatch{ServerNames: []string{"a.example.com"}}),
		chain("wild", resource.FilterChainMatch{ServerNames: []string{"*.example.com"}}),
		chain("deep", resource.FilterChainMatch{ServerNames: []string{"*.b.example.com"}}),
		chain("pass-tls", resource.FilterChainMatch{ServerNames: []string{"db.test"}, TransportProtocol: "tls"}),
		chain("h2-only", resource.FilterChainMatch{ServerNames: []string{"alpn.test"}, ApplicationProtocols: []string{"h2"}}),
		chain("alpn-any", resource.FilterChainMatch{ServerNames: []string{"alpn.test"}}),
		chain("no-names-tls", resource.FilterChainMatch{TransportProtocol: "tls"}),
		chain("no-names", resource.FilterChainMatch{}),
	}}
	withDefault := *l
	withDefault.FilterChains = l.FilterChains[:4]
	withDefault.DefaultChain = &resource.FilterChain{Name: "default"}
	tests := []struct {
		name string
		l    *resource.Listener
		c    Connection
		want string // "" → no chain
	}{
		{"exact beats wildcard", l, Connection{ServerName: "a.example.com", TransportProtocol: "tls"}, "exact"},
		{"SNI compared case-insensitively", l, Connection{ServerName: "A.Example.COM", TransportProtocol: "tls"}, "exact"},
		{"wildcard", l, Connection{ServerName: "c.example.com", TransportProtocol: "tls"}, "wild"},
		{"longest wildcard", l, Connection{ServerName: "x.b.example.com", TransportProtocol: "tls"}, "deep"},
		{"wildcard does not match its bare domain", l, Connection{ServerName: "example.com", TransportProtocol: "tls"}, "no-names-tls"},
		{"unknown SNI falls to chains without names", l, Connection{ServerName: "other.test", TransportProtocol: "tls"}, "no-names-tls"},
		{"plaintext", l, Connection{TransportProtocol: "raw_buffer"}, "no-names"},
		{"server name branch is final (no backtracking)", l, Connection{ServerName: "db.test", TransportProtocol: "raw_buffer"}, ""},
		{"ALPN listed", l, Connection{ServerName: "alpn.test", TransportProtocol: "tls", ApplicationProtocols: []string{"http/1.1", "h2"}}, "h2-only"},
		{"ALPN not listed", l, Connection{ServerName: "alpn.test", TransportProtocol: "tls", ApplicationProtocols: []string{"http/1.1"}}, "alpn-any"},
		{"default chain", &withDefault, Connection{ServerName: "nothing.test", TransportProtocol: "tls"}, "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ChainForConnection(tt.l, tt.c)
			name := ""
			if got != nil {
				name = got.Name
			}
			if name != tt.want {
				t.Errorf("chain = %q, want %q", name, tt.want)
			}
		})
	}
}
