package dashboard

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The example's addresses are moved into this package's subnet by meshtest.Example, so
// the test runs beside test/e2e's `lucid up` (which uses the example's own): sidecars
// 127.0.10.k → 127.0.124.(10+k), apps 127.0.20.k → 127.0.124.(20+k), the gateway
// 127.0.0.1 → 127.0.124.2.
const (
	subnet          = 124
	controlPlane    = "127.0.124.100"
	gatewayIP       = "127.0.124.2"
	gatewayAddr     = gatewayIP + ":8080"
	curlProxy       = "http://127.0.124.19:15001" // the client workload's sidecar (the example's .10.9)
	productpageSide = "127.0.124.11"              // productpage's sidecar (the example's .10.1)
)

// bookinfo is examples/bookinfo-lite running in this process (meshtest.Example with the
// example's demo apps): the control plane (which serves the dashboard) on fixed addresses,
// so that a restarted one is found again, a sidecar per WorkloadEntry and the gateway.
type bookinfo struct{ *meshtest.Mesh }

// Debug is the control plane's debug address (the dashboard's).
func (b *bookinfo) Debug() string { return net.JoinHostPort(controlPlane, "15014") }

func startBookinfo(t *testing.T) *bookinfo {
	t.Helper()
	b := &bookinfo{}
	files, workloads := meshtest.Example(t, "bookinfo-lite", subnet)
	b.Mesh = meshtest.StartWith(t, meshtest.Options{
		GRPCAddr: net.JoinHostPort(controlPlane, "15010"), DebugAddr: b.Debug(), DemoApps: true,
	}, files, workloads)
	return b
}

// traffic sends requests until stop is called, at about rps a second: through the
// gateway (gateway → productpage → reviews → ratings) and, with v3 set, /v3 requests
// from the client workload (→ reviews subset v3, which has no endpoints).
type traffic struct {
	v3     sync.Mutex
	sendV3 bool
	cancel context.CancelFunc
	done   chan struct{}
}

func startTraffic(t *testing.T, rps int) *traffic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{cancel: cancel, done: make(chan struct{})}
	proxyURL, _ := url.Parse(curlProxy)
	viaGateway := &http.Client{Timeout: 5 * time.Second}
	viaCurl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	get := func(c *http.Client, u string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	go func() {
		defer close(tr.done)
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		for n := 0; n < 100000; n++ { // bounded: the test stops it long before
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			get(viaGateway, "http://"+gatewayAddr+"/productpage")
			tr.v3.Lock()
			v3 := tr.sendV3
			tr.v3.Unlock()
			if v3 {
				get(viaCurl, "http://reviews:9080/v3/reviews")
			}
		}
	}()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *traffic) startV3() {
	tr.v3.Lock()
	tr.sendV3 = true
	tr.v3.Unlock()
}

func (tr *traffic) stop() {
	tr.cancel()
	<-tr.done
}
