package xconnect_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"

	_ "github.com/lucid-mesh/lucid/internal/dataplane/xconnect"
)

// TestNetHTTPAcceptsExtendedConnect: importing the package is enough for net/http's
// HTTP/2 server to accept :protocol (it initialised after xconnect set GODEBUG).
func TestNetHTTPAcceptsExtendedConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.89.50:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Method+" "+r.Header.Get(":protocol"))
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	//nolint:staticcheck // net/http's client cannot send :protocol; x/net's can.
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections() //nolint:staticcheck // as above
	req, err := http.NewRequestWithContext(t.Context(), http.MethodConnect, "http://"+ln.Addr().String()+"/ws", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	resp, err := tr.RoundTrip(req) //nolint:staticcheck // as above
	if err != nil {
		t.Fatalf("extended CONNECT refused: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "CONNECT websocket" {
		t.Fatalf("server saw %q", b)
	}
}
