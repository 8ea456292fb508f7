package hardening

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEdgeHeaderTrust: a client outside the mesh does not steer the proxies. At the gateway
// its x-envoy-* retry and timeout headers are stripped, never honoured (Envoy trusts no
// address as internal without internal_address_config); inside the mesh the sidecar honours
// them, with the retries bounded whatever the header asks.
func TestEdgeHeaderTrust(t *testing.T) {
	m := theMesh(t)
	req := func(addr, path, id string, hdr ...string) result {
		return send(addr, []string{"GET " + path + " HTTP/1.1\r\nHost: app\r\nX-Request-Id: " + id + "\r\n" +
			strings.Join(hdr, "\r\n") + "\r\nConnection: close\r\n\r\n"}, nil)
	}
	t.Run("retries at the gateway", func(t *testing.T) {
		r := req(gwListen, "/status/503", "edge-retries", "X-Envoy-Retry-On: 5xx", "X-Envoy-Max-Retries: 100")
		if r.status != http.StatusServiceUnavailable || m.app.attemptsOf("edge-retries") != 1 {
			t.Fatalf("got %d after %d attempts, want the app's 503 after 1", r.status, m.app.attemptsOf("edge-retries"))
		}
		h := m.app.lastHeaders()
		for k := range h {
			if strings.HasPrefix(k, "x-envoy-retry") || k == "x-envoy-max-retries" {
				t.Errorf("the app received %s: %q", k, h[k])
			}
		}
		if h["x-envoy-external-address"] != "127.0.0.1" {
			t.Errorf("x-envoy-external-address %q, want the client's 127.0.0.1", h["x-envoy-external-address"])
		}
		if _, ok := h["x-lucid-hops"]; ok {
			t.Errorf("the app received x-lucid-hops %q", h["x-lucid-hops"])
		}
	})
	t.Run("timeout at the gateway", func(t *testing.T) {
		r := req(gwListen, "/echo/slow", "edge-timeout", "X-Envoy-Upstream-Rq-Timeout-Ms: 1")
		if r.status != http.StatusOK {
			t.Fatalf("got %d (x-lucid-error %q), want 200: the client's 1 ms timeout must not apply", r.status, r.header.Get("X-Lucid-Error"))
		}
	})
	t.Run("internal clients are honoured, within bounds", func(t *testing.T) {
		r := req(sidecarIn, "/status/503", "inside-retries", "X-Envoy-Retry-On: 5xx", "X-Envoy-Max-Retries: 100")
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("got %d, want 503", r.status)
		}
		if n := m.app.attemptsOf("inside-retries"); n != 11 {
			t.Fatalf("%d attempts, want 11 (x-envoy-max-retries 100 bounded to 10 retries)", n)
		}
		m.accessLog(t, "app", `"GET /status/503 HTTP/1.1" 503 URX via_upstream`) // the retry limit, in the access log
	})
	m.settled(t, "edge headers")
}

// TestHTTP2HeaderLimits: HTTP/2 requests (h2c prior knowledge) get the same limits.
func TestHTTP2HeaderLimits(t *testing.T) {
	m := theMesh(t)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos, DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, fmt.Errorf("no TLS")
	}, TLSClientConfig: &tls.Config{}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, tc := range []struct {
		n    int
		want int
	}{{90, 200}, {101, 431}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+gwListen+fmt.Sprintf("/echo/h2-%d", tc.n), nil)
		req.Host = "app"
		for i := range tc.n {
			req.Header.Set(fmt.Sprintf("X-H%d", i), "v")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.ProtoMajor != 2 {
			t.Errorf("%d headers over HTTP/%d: %d %q, want %d", tc.n, resp.ProtoMajor, resp.StatusCode, b, tc.want)
		}
		if tc.want == 431 && !strings.Contains(resp.Header.Get("X-Lucid-Error"), "max_headers_count (100)") {
			t.Errorf("x-lucid-error %q", resp.Header.Get("X-Lucid-Error"))
		}
	}
	tr.CloseIdleConnections()
	m.settled(t, "HTTP/2")
}
