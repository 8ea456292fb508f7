package proxy

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// upgradeBackend answers "Upgrade: websocket" with 101 and then echoes bytes (a stand-in
// for a WebSocket server: the proxy only moves bytes after the 101); /sse streams one
// server-sent event and waits for release before the next.
func upgradeBackend(t *testing.T, addr string, release chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: one\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "data: two\n\n")
			return
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprint(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf.Flush()
		_, _ = io.Copy(c, buf)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

func TestWebSocketAndSSEThroughSidecar(t *testing.T) {
	const app, side = "127.0.93.71:8080", "127.0.93.7:8080"
	release := make(chan struct{})
	upgradeBackend(t, app, release)
	sp := newStreamProxy(t, "127.0.93.7", time.Second)
	applyRoutes(t, sp.p, side, [][2]string{{"/", "h1ws"}}, map[string][]string{"h1ws": {app}})

	t.Run("websocket upgrade", func(t *testing.T) {
		c, err := net.Dial("tcp", side)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /chat HTTP/1.1\r\nHost: ws.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("status %d, upgrade %q, x-lucid-error %q", resp.StatusCode, resp.Header.Get("Upgrade"), resp.Header.Get("X-Lucid-Error"))
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		for _, msg := range []string{"hello", "world"} {
			fmt.Fprint(c, msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
				t.Fatalf("echo %q: %q %v", msg, got, err)
			}
		}
		c.Close()
		info := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return i.Path == "/chat" })
		if info.ResponseCode != 101 || info.BytesReceived != 10 || info.BytesSent != 10 {
			t.Fatalf("access log: code %d, received %d, sent %d", info.ResponseCode, info.BytesReceived, info.BytesSent)
		}
	})
	t.Run("server-sent events are flushed at once", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://" + side + "/sse")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n') // arrives while the backend still holds the response open
		if err != nil || line != "data: one\n" {
			t.Fatalf("first event: %q %v", line, err)
		}
		close(release)
		rest, _ := io.ReadAll(br)
		if !strings.Contains(string(rest), "data: two") {
			t.Fatalf("rest %q", rest)
		}
	})
}

// TestWebSocketThroughExplicitProxy: a client configured with the sidecar as its HTTP
// proxy (curl -x) sends an absolute-URI GET with Upgrade: websocket to :15001; the
// request is routed by the port's route table, upgraded, and bytes flow both ways.
func TestWebSocketThroughExplicitProxy(t *testing.T) {
	const ip, app = "127.0.89.30", "127.0.89.31:8080"
	upgradeBackend(t, app, make(chan struct{}))
	cm := cluster.NewManager(nil)
	ps := pool.NewSet(nil)
	lg := &infoLog{}
	fw := forward.New(forward.Options{Clusters: cm, Pools: ps, Observers: []func(*streaminfo.Info){lg.observe}})
	p := New(Options{IP: netip.MustParseAddr(ip), Forwarder: fw, Clusters: cm, Pools: ps, DrainTimeout: time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
		fw.Close()
		ps.Close()
	})
	if err := p.Apply(snapshot(ip, 9999, app, app)); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ip+":15001")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET http://reviews:9080/chat HTTP/1.1\r\nHost: reviews:9080\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, x-lucid-error %q", resp.StatusCode, resp.Header.Get("X-Lucid-Error"))
	}
	for _, msg := range []string{"over", "the proxy"} {
		fmt.Fprint(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %q: %q %v", msg, got, err)
		}
	}
	c.Close()
	info := waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.Path == "/chat" })
	if info.ResponseCode != 101 || info.UpstreamCluster != "svc" || info.UpstreamHost != app {
		t.Fatalf("access log: code %d cluster %q host %q", info.ResponseCode, info.UpstreamCluster, info.UpstreamHost)
	}
}

// strictWebSocketBackend is an HTTP/1.1 WebSocket server that checks the handshake as
// real servers do (GET, Upgrade, a Sec-WebSocket-Key), answers with the accept value and
// echoes bytes.
func strictWebSocketBackend(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Sec-WebSocket-Key")
		if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
			http.Error(w, "bad handshake: "+r.Method+" upgrade="+r.Header.Get("Upgrade")+" key="+key, http.StatusBadRequest)
			return
		}
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(buf, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(sum[:]))
		buf.Flush()
		_, _ = io.Copy(c, buf)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

// TestWebSocketOverHTTP2 (RFC 8441): an HTTP/2 client's extended CONNECT with
// :protocol websocket reaches an HTTP/1.1 WebSocket server as a GET upgrade, gets 200,
// and bytes flow both ways on the stream; through a listener and through the explicit
// proxy.
func TestWebSocketOverHTTP2(t *testing.T) {
	const ip, app = "127.0.89.40", "127.0.89.41:8080"
	strictWebSocketBackend(t, app)
	lg := &infoLog{}
	sidecar := func(ip string) *Proxy {
		cm := cluster.NewManager(nil)
		ps := pool.NewSet(nil)
		fw := forward.New(forward.Options{Clusters: cm, Pools: ps, Observers: []func(*streaminfo.Info){lg.observe}})
		p := New(Options{IP: netip.MustParseAddr(ip), Forwarder: fw, Clusters: cm, Pools: ps, DrainTimeout: time.Second})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = p.Close(ctx)
			fw.Close()
			ps.Close()
		})
		return p
	}
	if err := sidecar(ip).Apply(snapshot(ip, 9999, app, app)); err != nil {
		t.Fatal(err)
	}
	// A second sidecar with a plain HTTP listener (an inbound or service port).
	const side = "127.0.89.42:8080"
	applyRoutes(t, sidecar("127.0.89.42"), side, [][2]string{{"/", "h1ws"}}, map[string][]string{"h1ws": {app}})

	// net/http's client refuses the :protocol pseudo-header; x/net's HTTP/2 client sends it.
	//nolint:staticcheck // net/http's client cannot send :protocol (RFC 8441); x/net's can.
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections() //nolint:staticcheck // as above

	for _, tc := range []struct{ name, via string }{
		{"explicit proxy", ip + ":15001"},
		{"HTTP listener", side},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodConnect, "http://"+tc.via+"/chat", pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "reviews:9080"
			req.Header.Set(":protocol", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			resp, err := tr.RoundTrip(req) //nolint:staticcheck // as above
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Sec-WebSocket-Accept") != "" || resp.Header.Get("Upgrade") != "" {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d, headers %v, body %q", resp.StatusCode, resp.Header, b)
			}
			for _, msg := range []string{"hello", "over h2"} {
				if _, err := io.WriteString(pw, msg); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(resp.Body, got); err != nil || string(got) != msg {
					t.Fatalf("echo %q: %q %v", msg, got, err)
				}
			}
			pw.Close() // the client ends its stream; the server sees EOF and closes
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatalf("end of stream: %v", err)
			}
			info := waitInfo(t, lg, func(i *streaminfo.Info) bool {
				return i.Path == "/chat" && i.Method == http.MethodConnect && strings.HasPrefix(i.DownstreamLocalAddress.String(), strings.Split(tc.via, ":")[0])
			})
			if info.ResponseCode != 200 || info.UpstreamHost != app || info.BytesReceived != 12 || info.BytesSent != 12 {
				t.Fatalf("access log: code %d host %q received %d sent %d", info.ResponseCode, info.UpstreamHost, info.BytesReceived, info.BytesSent)
			}
		})
	}
}
