package proxy

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHTTP2Server: h2c requests to a socket are served by h2server by default and by
// net/http's HTTP/2 server with LUCID_HTTP2_SERVER=nethttp, with the same answer either way.
func TestHTTP2Server(t *testing.T) {
	const app = "127.0.54.21:8080"
	ln, err := net.Listen("tcp", app)
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: time.Second, Protocols: new(http.Protocols), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "from the app over "+r.Proto)
	})}
	up.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })

	for _, tc := range []struct {
		env string
		ip  string
		own bool
	}{{"", "127.0.54.22", true}, {"nethttp", "127.0.54.23", false}} {
		t.Run("LUCID_HTTP2_SERVER="+tc.env, func(t *testing.T) {
			t.Setenv(HTTP2ServerEnv, tc.env)
			sp := newStreamProxy(t, tc.ip, 100*time.Millisecond)
			side := tc.ip + ":9090"
			applyRoutes(t, sp.p, side, [][2]string{{"/", "app"}}, map[string][]string{"app": {app}})
			sp.p.mu.Lock()
			var own bool
			for _, sk := range sp.p.sockets {
				own = sk.h2s != nil
			}
			sp.p.mu.Unlock()
			if own != tc.own {
				t.Errorf("served by h2server: %v, want %v", own, tc.own)
			}
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + side + "/x")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || string(body) != "from the app over HTTP/2.0" {
				t.Errorf("%s %d %q", resp.Proto, resp.StatusCode, body)
			}
		})
	}
}
