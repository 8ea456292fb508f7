package h2client

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	_ "github.com/lucid-mesh/lucid/internal/dataplane/xconnect" // net/http's server takes :protocol (RFC 8441)
)

// echoTunnel answers a CONNECT with 200 and echoes the stream; X-Seen says what the
// server saw of the request.
func echoTunnel(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "not CONNECT", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Seen", r.Host+" "+r.Header.Get(":protocol")+" "+r.URL.Path)
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	buf := make([]byte, 1024)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n])
			w.(http.Flusher).Flush()
		}
		if err != nil {
			return
		}
	}
}

// CONNECT (a TCP tunnel: :method and :authority only) and extended CONNECT (RFC 8441,
// WebSocket over HTTP/2: :protocol, :path, :scheme) both return at the 200 and carry
// bytes both ways on the stream.
func TestConnectTunnels(t *testing.T) {
	addr := startServer(t, 0, echoTunnel)
	cc := dial(t, addr, Config{})
	tests := []struct {
		name     string
		url      *url.URL
		protocol string
		seen     string
	}{
		{"CONNECT", &url.URL{Host: "backend.example:443"}, "", "backend.example:443  "},
		{"extended CONNECT", &url.URL{Scheme: "http", Host: "svc.example", Path: "/chat"}, "websocket", "svc.example websocket /chat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			req := &http.Request{Method: http.MethodConnect, URL: tt.url, Host: tt.url.Host, Header: http.Header{}, Body: pr, ContentLength: -1}
			req = req.WithContext(t.Context())
			if tt.protocol != "" {
				req.Header.Set(":protocol", tt.protocol)
			}
			resp, err := cc.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Seen") != tt.seen {
				t.Fatalf("status %d, server saw %q; want 200 and %q", resp.StatusCode, resp.Header.Get("X-Seen"), tt.seen)
			}
			for _, m := range []string{"hello", "again"} {
				if _, err := io.WriteString(pw, m); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(m))
				if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != m {
					t.Fatalf("echo %q, %v; want %q", got, err, m)
				}
			}
			_ = pw.Close()
			if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
				t.Fatalf("end of tunnel: %q, %v", rest, err)
			}
		})
	}
}
