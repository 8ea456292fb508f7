package hardening

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TestForwardingLoops: a configuration that sends requests in a circle gets one answer
// that says so, instead of thousands of connections.
func TestForwardingLoops(t *testing.T) {
	m := theMesh(t)
	cases := []struct {
		name   string
		do     func() result
		status int
		lucid  string // the start of x-lucid-error
		proxy  string // whose listeners must not fill up
		listen string
	}{
		{name: "an inbound endpoint that is the sidecar's own listener (a WorkloadEntry whose app address is its own)",
			do:     func() result { return viaProxy(otherIP+":15001", "http://selfie.default.svc.cluster.local:9080/x") },
			status: http.StatusBadGateway, lucid: "UF: forwarding loop: endpoint " + selfieIP + ":9080", proxy: selfieIP, listen: selfieIP + ":9080"},
		{name: "a gateway route to the gateway itself",
			do: func() result {
				return send(gwListen, []string{"GET /x HTTP/1.1\r\nHost: self.example:8080\r\nConnection: close\r\n\r\n"}, nil)
			},
			status: http.StatusBadGateway, lucid: "UF: forwarding loop: endpoint " + gwListen, proxy: gwIP, listen: gwListen},
		{name: "gateway → another sidecar → gateway",
			do: func() result {
				return send(gwListen, []string{"GET /x HTTP/1.1\r\nHost: loop.example:8080\r\nConnection: close\r\n\r\n"}, nil)
			},
			status: http.StatusLoopDetected, lucid: "DPE: forwarding loop: this request already passed listener", proxy: gwIP, listen: gwListen},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			admin := testutil.Admin(c.proxy)
			before, err := stat(admin, regexp.QuoteMeta("listener."+strings.ReplaceAll(c.listen, ":", "_")+".downstream_cx_total"))
			if err != nil {
				t.Fatal(err)
			}
			r := c.do()
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != c.status || !strings.HasPrefix(r.header.Get("X-Lucid-Error"), c.lucid) {
				t.Fatalf("got %d, x-lucid-error %q; want %d, %q", r.status, r.header.Get("X-Lucid-Error"), c.status, c.lucid)
			}
			after, err := stat(admin, regexp.QuoteMeta("listener."+strings.ReplaceAll(c.listen, ":", "_")+".downstream_cx_total"))
			if err != nil {
				t.Fatal(err)
			}
			if n := after - before; n > 3 {
				t.Errorf("%s accepted %d connections for one request", c.listen, n)
			}
			m.settled(t, c.name)
		})
	}
}

// viaProxy sends GET target through an explicit proxy (a workload's sidecar on :15001).
func viaProxy(proxy, target string) result {
	pu, _ := url.Parse("http://" + proxy)
	tr := &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return result{err: fmt.Errorf("GET %s via %s: %w", target, proxy, err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
