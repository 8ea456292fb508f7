package meshtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/local/demoapp"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TestExampleBookinfo: examples/bookinfo-lite, moved into 127.0.103.0/24, runs as a test
// mesh; requests through the client workload's sidecar meet the example's routing as a
// user of `lucid up` does: productpage answers, and reviews' subset v3 (which the example
// leaves without endpoints on purpose) gets Envoy's 503 with the reason.
func TestExampleBookinfo(t *testing.T) {
	files, workloads := Example(t, "bookinfo-lite", 103, "gateway.yaml")
	var curl string
	for _, w := range workloads {
		if w.Name == "curl" {
			curl = w.IP
		}
		if w.Name == "reviews-v3" && (w.Version != "v3" || w.Labels["version"] != "") {
			t.Errorf("reviews-v3: version %q labels %v, want the app's v3 and no version label (as the example has it)", w.Version, w.Labels)
		}
	}
	if curl != "127.0.103.19" || len(workloads) != 6 {
		t.Fatalf("workloads %+v: want 6 with curl at 127.0.103.19", workloads)
	}
	if strings.Contains(files["reviews.yaml"], "127.0.20.") || !strings.Contains(files["reviews.yaml"], "127.0.103.22") {
		t.Fatalf("reviews.yaml not rewritten:\n%s", files["reviews.yaml"])
	}
	m := Start(t, files, workloads)
	c := m.Client(curl)

	resp, err := c.Get("http://productpage:9080/")
	if err != nil {
		t.Fatal(err)
	}
	var e Echo
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || e.Service != "productpage" {
		t.Fatalf("GET productpage: %d %+v %v", resp.StatusCode, e, err)
	}

	resp, err = c.Get("http://reviews:9080/v3")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(b) != "no healthy upstream" || !strings.Contains(resp.Header.Get("x-lucid-error"), "v3") {
		t.Fatalf("GET reviews/v3: %d %q x-lucid-error %q, want 503 no healthy upstream naming subset v3", resp.StatusCode, b, resp.Header.Get("x-lucid-error"))
	}
}

// TestExampleDemoAppsAndRestart: the whole example, gateway and certificates included,
// with its own demo apps: a request to the gateway reaches productpage, which calls
// reviews, which calls ratings, each through its sidecar. After the control plane
// restarts on its fixed address, a configuration written then reaches the proxies again
// (ratings answers 418 by fault injection), so they reconnected.
func TestExampleDemoAppsAndRestart(t *testing.T) {
	files, workloads := Example(t, "bookinfo-lite", 103)
	if !strings.Contains(files["certs/bookinfo.crt"], "BEGIN CERTIFICATE") {
		t.Fatalf("no generated gateway certificate among the files: %v", slices.Sorted(maps.Keys(files)))
	}
	m := StartWith(t, Options{GRPCAddr: "127.0.103.100:15010", DemoApps: true}, files, workloads)
	// ratings is what productpage's call to reviews saw of reviews' call to ratings.
	ratings := func() (int, string) {
		resp, err := http.Get("http://127.0.103.2:8080/productpage")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var page, reviews demoapp.Answer
		if json.Unmarshal(b, &page) != nil || len(page.Calls) != 1 || json.Unmarshal(page.Calls[0].Answer, &reviews) != nil || len(reviews.Calls) != 1 {
			return 0, fmt.Sprintf("%d %s", resp.StatusCode, b)
		}
		return reviews.Calls[0].Status, string(b)
	}
	if st, body := ratings(); st != http.StatusOK {
		t.Fatalf("gateway → productpage → reviews → ratings: ratings answered %d, want 200:\n%s", st, body)
	}

	m.RestartControlPlane()
	m.WriteFile("fault.yaml", `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings-fault, namespace: default}
spec:
  hosts: [ratings]
  http:
  - fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: ratings}}]
`)
	testutil.EventuallyWhy(t, 10*time.Second, "ratings answering 418 after the restarted control plane served the fault", func() (bool, string) {
		st, body := ratings()
		return st == http.StatusTeapot, body
	})
}

func TestRewriteExampleAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"address: 127.0.10.1":               "address: 127.0.103.11",
		"lucid.dev/app-address: 127.0.20.5": "lucid.dev/app-address: 127.0.103.25",
		"curl http://127.0.0.1:8080/":       "curl http://127.0.103.2:8080/",
		"127.0.10.99 127.0.0.53":            "127.0.10.99 127.0.0.53",
	} {
		if got := RewriteExampleAddresses(in, 103); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
