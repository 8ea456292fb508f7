package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil/kubenode"
)

// bookinfo renders productpage → reviews (v1 ×v1Replicas, v2) as Deployments and Services,
// with the DestinationRule's subsets v1, v2, v3 and the VirtualService's 80/20 split (and
// subset v3, which selects nothing, for end-user jason).
//
// interception "NONE" (Istio's sidecar.istio.io/interceptionMode) runs the mesh without
// iptables, as Lucid's local mode does: each app listens on 127.0.0.1, the sidecar serves
// the Service port on the pod IP and forwards to it, and productpage calls reviews through
// its sidecar's explicit proxy (:15001, HTTP_PROXY-style). "" is the default: istio-init
// applies the capture rules and the apps know nothing of the mesh.
func bookinfo(ns, interception string, v1Replicas int) string {
	listen, annotations, proxy := "0.0.0.0:9080", "{}", ""
	if interception == "NONE" {
		listen = "127.0.0.1:9080"
		annotations = `{sidecar.istio.io/interceptionMode: "NONE"}`
		proxy = `, "--proxy", "http://$(POD_IP):15001"`
	}
	app := func(name, version string, replicas int, extra string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s-%[3]s, namespace: %[1]s}
spec:
  replicas: %[4]d
  # An old pod goes only once its replacement has been Ready for 2 s: time for the new
  # endpoint to reach the callers' sidecars (the usual guard against a single-replica gap).
  minReadySeconds: 2
  selector: {matchLabels: {app: %[2]s, version: %[3]s}}
  template:
    metadata:
      labels: {app: %[2]s, version: %[3]s}
      annotations: %[5]s
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: %[2]s
        image: %[6]s
        args: ["--listen", "%[7]s", "--name", "%[2]s", "--version", "%[3]s", "--health-path", "/healthz"%[8]s]
        env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
        ports: [{containerPort: 9080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: 9080}, periodSeconds: 1, failureThreshold: 1}
        # The usual way to let callers learn of a deletion before the app stops.
        lifecycle: {preStop: {sleep: {seconds: 3}}}
---
`, ns, name, version, replicas, annotations, kubenode.DemoImage, listen, extra)
	}
	svc := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {app: %[2]s}
  ports: [{name: http, port: 9080}]
---
`, ns, name)
	}
	return app("productpage", "v1", 1, `, "--call", "http://reviews:9080/"`+proxy) +
		app("reviews", "v1", v1Replicas, "") + app("reviews", "v2", 1, "") +
		svc("productpage") + svc("reviews") + fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: %[1]s}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
%[2]s`, ns, reviewsRoute(ns, 80, 20))
}

// reviewsRoute is the reviews VirtualService: end-user jason → subset v3 (empty), the rest
// split between v1 and v2.
func reviewsRoute(ns string, v1, v2 int) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: %s}
spec:
  hosts: [reviews]
  http:
  - name: v3
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - name: split
    route:
    - {destination: {host: reviews, subset: v1}, weight: %d}
    - {destination: {host: reviews, subset: v2}, weight: %d}
`, ns, v1, v2)
}

// deploy applies bookinfo into a fresh labelled namespace and waits for every Deployment.
func (m *mesh) deploy(ctx context.Context, t *testing.T, ns, interception string, v1Replicas int) {
	t.Helper()
	m.namespace(ctx, t, ns, true)
	start := time.Now()
	m.apply(ctx, t, bookinfo(ns, interception, v1Replicas))
	for _, d := range []string{"productpage-v1", "reviews-v1", "reviews-v2"} {
		if err := m.waitRollout(ctx, ns, d); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bookinfo (%s) Ready %s after apply", cmpOr(interception, "capture"), time.Since(start).Round(10*time.Millisecond))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// answer is the part of the demo app's JSON the scenarios read.
type answer struct {
	Service string `json:"service"`
	Calls   []struct {
		Status     int    `json:"status"`
		LucidError string `json:"x_lucid_error"`
		Body       string `json:"body"`
		Error      string `json:"error"`
		Answer     struct {
			Version string `json:"version"`
		} `json:"answer"`
	} `json:"calls"`
}

// ask sends one request to productpage (at addr) and returns its answer; an error names
// what failed (productpage's status, or the call to reviews).
func ask(ctx context.Context, c *http.Client, addr string, hdr map[string]string) (answer, error) {
	var a answer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return a, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return a, err
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("productpage answered %s (x-lucid-error %q): %.200s", resp.Status, resp.Header.Get("x-lucid-error"), body)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("productpage's answer: %w: %.200s", err, body)
	}
	if len(a.Calls) != 1 {
		return a, fmt.Errorf("productpage made %d calls: %.200s", len(a.Calls), body)
	}
	return a, nil
}

// load sends requests to productpage from a few clients until stop is called, and tallies
// them: every request must get 200 from productpage and 200 from reviews.
type load struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	versions     map[string]int
	failures     []string
	stop         func()
	done         sync.WaitGroup
}

func startLoad(addr string, clients int) *load {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // bounded, whatever happens
	l := &load{versions: map[string]int{}, stop: cancel}
	for range clients {
		l.done.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for ctx.Err() == nil {
				a, err := ask(ctx, c, addr, nil)
				if ctx.Err() != nil {
					return
				}
				l.sent.Add(1)
				if err == nil && a.Calls[0].Status != http.StatusOK {
					call := a.Calls[0]
					err = fmt.Errorf("reviews answered %d (x-lucid-error %q) %s %s", call.Status, call.LucidError, call.Body, call.Error)
				}
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					if len(l.failures) < 20 {
						l.failures = append(l.failures, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
				} else {
					l.versions[a.Calls[0].Answer.Version]++
				}
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return l
}

// finish stops the load and reports it; any failed request fails t.
func (l *load) finish(t *testing.T, what string) {
	t.Helper()
	l.stop()
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	var vs []string
	for v, n := range l.versions {
		vs = append(vs, fmt.Sprintf("%s=%d", v, n))
	}
	slices.Sort(vs)
	t.Logf("%s: %d requests through productpage's and reviews' sidecars, %d failed; reviews versions %s",
		what, l.sent.Load(), l.failed.Load(), strings.Join(vs, " "))
	if l.sent.Load() < 50 {
		t.Errorf("only %d requests were sent", l.sent.Load())
	}
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d requests failed, e.g.:\n%s", n, strings.Join(l.failures, "\n"))
	}
}
