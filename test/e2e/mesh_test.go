package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The in-process mesh: a client workload, reviews v1/v2/v3 (v3 lacks its version label,
// scenario 3) and ratings, on 127.0.77.x with apps on 127.0.78.x.
var services = meshtest.HTTPService("reviews") + meshtest.HTTPService("ratings")

const workloads = `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: curl}
spec: {address: 127.0.77.1, labels: {app: curl}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, annotations: {lucid.dev/app-address: 127.0.78.2}}
spec: {address: 127.0.77.2, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, annotations: {lucid.dev/app-address: 127.0.78.3}}
spec: {address: 127.0.77.3, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3, annotations: {lucid.dev/app-address: 127.0.78.4}}
spec: {address: 127.0.77.4, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings, annotations: {lucid.dev/app-address: 127.0.78.5}}
spec: {address: 127.0.77.5, labels: {app: ratings, version: v1}}
`

const reviewsDR = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`

func reviewsVS(w1, w2 int) string {
	return fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: v3
    match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: v9
    match: [{uri: {prefix: /v9}}]
    route: [{destination: {host: reviews, subset: v9}}]
  - name: split
    route:
    - {destination: {host: reviews, subset: v1}, weight: %d}
    - {destination: {host: reviews, subset: v2}, weight: %d}
`, w1, w2)
}

const ratingsVS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {prefix: /ratings}}]
    route: [{destination: {host: ratings}}]
`

func startMesh(t *testing.T) *meshtest.Mesh {
	t.Helper()
	return meshtest.Start(t, map[string]string{
		"services.yaml":   services,
		"workloads.yaml":  workloads,
		"reviews-dr.yaml": reviewsDR,
		"reviews-vs.yaml": reviewsVS(80, 20),
		"ratings-vs.yaml": ratingsVS,
	}, []meshtest.Workload{
		{Name: "curl", IP: "127.0.77.1", Labels: map[string]string{"app": "curl"}},
		{Name: "reviews-v1", IP: "127.0.77.2", AppIP: "127.0.78.2", Ports: []int{9080}, Version: "v1", Labels: map[string]string{"app": "reviews", "version": "v1"}},
		{Name: "reviews-v2", IP: "127.0.77.3", AppIP: "127.0.78.3", Ports: []int{9080}, Version: "v2", Labels: map[string]string{"app": "reviews", "version": "v2"}},
		{Name: "reviews-v3", IP: "127.0.77.4", AppIP: "127.0.78.4", Ports: []int{9080}, Version: "v3", Labels: map[string]string{"app": "reviews"}},
		{Name: "ratings", IP: "127.0.77.5", AppIP: "127.0.78.5", Ports: []int{9080}, Version: "v1", Labels: map[string]string{"app": "ratings", "version": "v1"}},
	})
}

type answer struct {
	status int
	body   string
	header http.Header
	echo   meshtest.Echo
}

func get(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(b), header: resp.Header}
	if resp.StatusCode == 200 {
		_ = json.Unmarshal(b, &a.echo)
	}
	return a
}

func TestMeshRoutesThroughSidecars(t *testing.T) {
	m := startMesh(t)
	c := m.Client("127.0.77.1")

	a := get(t, c, "http://ratings:9080/ratings/1")
	if a.status != 200 || a.echo.Service != "ratings" || a.echo.Path != "/ratings/1" {
		t.Fatalf("ratings: got %d %q (x-lucid-error %q)", a.status, a.body, a.header.Get("x-lucid-error"))
	}
	if a.header.Get("x-envoy-upstream-service-time") == "" {
		t.Errorf("no x-envoy-upstream-service-time on a proxied response")
	}
	if a.echo.Headers.Get("X-Request-Id") == "" {
		t.Errorf("the app got no x-request-id")
	}

	t.Run("no route matches: 404 NR", func(t *testing.T) {
		a := get(t, c, "http://ratings:9080/other")
		if a.status != 404 || a.body != "" {
			t.Fatalf("got %d %q, want 404 with an empty body", a.status, a.body)
		}
		if e := a.header.Get("x-lucid-error"); !strings.HasPrefix(e, "NR:") {
			t.Errorf("x-lucid-error = %q, want an NR explanation", e)
		}
	})
	t.Run("empty subset: 503 UH that explains itself", func(t *testing.T) {
		a := get(t, c, "http://reviews:9080/v3")
		if a.status != 503 || a.body != "no healthy upstream" {
			t.Fatalf("got %d %q, want 503 no healthy upstream", a.status, a.body)
		}
		e := a.header.Get("x-lucid-error")
		for _, want := range []string{"UH:", `subset "v3"`, "reviews.default.svc.cluster.local", "version=v3: 0 match", "version=v1", "version=v2", "(none)"} {
			if !strings.Contains(e, want) {
				t.Errorf("x-lucid-error %q lacks %q", e, want)
			}
		}
	})
	t.Run("undefined subset: 503 NC", func(t *testing.T) {
		a := get(t, c, "http://reviews:9080/v9")
		if a.status != 503 {
			t.Fatalf("got %d %q, want 503", a.status, a.body)
		}
		if e := a.header.Get("x-lucid-error"); !strings.HasPrefix(e, "NC:") || !strings.Contains(e, "v9") {
			t.Errorf("x-lucid-error = %q, want an NC explanation naming subset v9", e)
		}
	})
	t.Run("unknown host passes through (ALLOW_ANY)", func(t *testing.T) {
		// The app of ratings, addressed directly by IP: not in the registry.
		a := get(t, c, "http://127.0.78.5:9080/direct")
		if a.status != 200 || a.echo.Service != "ratings" {
			t.Fatalf("got %d %q, want the app's answer through PassthroughCluster", a.status, a.body)
		}
	})
}

func TestMeshSplitsTrafficByWeight(t *testing.T) {
	m := startMesh(t)
	c := m.Client("127.0.77.1")
	const n = 2000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		a := get(t, c, "http://reviews:9080/reviews")
		if a.status != 200 {
			t.Fatalf("request %d: %d %q (x-lucid-error %q)", i, a.status, a.body, a.header.Get("x-lucid-error"))
		}
		counts[a.echo.Version]++
	}
	v1 := float64(counts["v1"]) / n
	if v1 < 0.75 || v1 > 0.85 || counts["v1"]+counts["v2"] != n {
		t.Fatalf("split = %v, want 80%% ±5 v1 and the rest v2", counts)
	}
}

// A live config change under concurrent load fails no request, and bad config leaves the
// last good one serving.
func TestMeshConfigChangesUnderLoad(t *testing.T) {
	m := startMesh(t)
	c := m.Client("127.0.77.1")

	var sent, failed atomic.Int64
	var firstFail atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://reviews:9080/reviews")
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("x-lucid-error")))
				}
			}
		}()
	}
	// waitVersions checks that a change written at `written` reaches the sidecars within
	// 1 s (the bound, with the control plane's default poll and debounce timers).
	waitVersions := func(want string, written time.Time) {
		t.Helper()
		deadline := written.Add(3 * time.Second)
		for time.Now().Before(deadline) {
			at := time.Now()
			ok := true
			for i := 0; i < 20; i++ {
				if a := get(t, c, "http://reviews:9080/reviews"); a.echo.Version != want {
					ok = false
					break
				}
			}
			if ok {
				if d := at.Sub(written); d > time.Second {
					t.Fatalf("the change reached the sidecar after %s, want within 1s", d.Round(time.Millisecond))
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("after the change, requests did not all reach %s within 3s", want)
	}
	for i := 0; i < 3; i++ {
		written := time.Now()
		m.WriteFile("reviews-vs.yaml", reviewsVS(0, 100))
		waitVersions("v2", written)
		written = time.Now()
		m.WriteFile("reviews-vs.yaml", reviewsVS(100, 0))
		waitVersions("v1", written)
	}
	// Malformed YAML in a new file, and the VirtualService turned invalid: both rejected,
	// the last good VirtualService keeps serving (all traffic to v1).
	m.WriteFile("broken.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x\n")
	m.WriteFile("reviews-vs.yaml", strings.Replace(reviewsVS(0, 100), "prefix: /v3", "regex: '('", 1))
	time.Sleep(500 * time.Millisecond)
	for i := 0; i < 50; i++ {
		if a := get(t, c, "http://reviews:9080/reviews"); a.status != 200 || a.echo.Version != "v1" {
			t.Fatalf("after invalid config: got %d %q, want v1 from the last good config", a.status, a.echo.Version)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during config changes; first: %v", failed.Load(), sent.Load(), firstFail.Load())
	}
	if sent.Load() < 100 {
		t.Fatalf("only %d requests were sent during the changes", sent.Load())
	}
	if !strings.Contains(m.Logs.String(), "reviews-vs.yaml") {
		t.Errorf("the control plane's log does not name the invalid file")
	}
}

// h2c (HTTP/2 with prior knowledge) into the sidecar's outbound proxy works like HTTP/1.1.
func TestMeshH2CDownstream(t *testing.T) {
	startMesh(t)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "127.0.77.1:15001")
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := 0; i < 20; i++ {
		resp, err := c.Get("http://ratings:9080/ratings/h2")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(b), `"service":"ratings"`) {
			t.Fatalf("h2c: %s %d %q", resp.Proto, resp.StatusCode, b)
		}
	}
}
