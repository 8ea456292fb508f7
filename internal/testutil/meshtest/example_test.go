package meshtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
