package forward_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Tests of the data-path speed work: what the user sees must not change.

func (h *hop) info(t *testing.T) *streaminfo.Info {
	t.Helper()
	select {
	case i := <-h.infos:
		return i
	case <-time.After(5 * time.Second):
		t.Fatal("no request finished")
		return nil
	}
}

// The upstream connection's local address reaches the access log over both protocols
// (pool.ConnObserver replaced an httptrace hook).
func TestUpstreamLocalAddressBothProtocols(t *testing.T) {
	for _, p := range benchProtos {
		t.Run(p.name, func(t *testing.T) {
			h := newHop(t, p.proto, echoKiB())
			for i := range 2 { // a new connection, then a reused one
				req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
				req.Host = "svc:9080"
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				info := h.info(t)
				if resp.StatusCode != 200 || n != 1024 || info.BytesSent != 1024 {
					t.Fatalf("request %d: status %d, %d bytes, info bytes sent %d", i, resp.StatusCode, n, info.BytesSent)
				}
				if !strings.HasPrefix(info.UpstreamLocalAddress, "127.0.84.1:") {
					t.Fatalf("request %d: upstream local address %q, want the proxy's end of the upstream connection", i, info.UpstreamLocalAddress)
				}
			}
		})
	}
}

// A body with a Content-Length is still streamed while it is incomplete: the first half
// reaches the client before the upstream sends the second (only a complete body waits
// for the end of the handler).
func TestPartialLengthBodyIsFlushed(t *testing.T) {
	for _, p := range benchProtos {
		t.Run(p.name, func(t *testing.T) {
			release := make(chan struct{})
			h := newHop(t, p.proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "10")
				_, _ = io.WriteString(w, "hello")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				_, _ = io.WriteString(w, "world")
			}))
			req, _ := http.NewRequest(http.MethodGet, h.url+"/", nil)
			req.Host = "svc:9080"
			resp, err := h.client.Do(req)
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Body.Close()
			first := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "hello" {
				close(release)
				t.Fatalf("first half: %q, %v", first, err)
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != "world" {
				t.Fatalf("second half: %q, %v", rest, err)
			}
			if resp.ContentLength != 10 && resp.Header.Get("Content-Length") != strconv.Itoa(10) {
				t.Fatalf("content-length %d", resp.ContentLength)
			}
			if info := h.info(t); info.BytesSent != 10 {
				t.Fatalf("bytes sent %d", info.BytesSent)
			}
		})
	}
}
