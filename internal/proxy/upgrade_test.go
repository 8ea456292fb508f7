package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/streaminfo"
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
