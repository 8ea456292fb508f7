package node

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dnsCapture is the pod annotation that turns on the agent's DNS proxy and the DNS capture
// rules (Istio's proxyMetadata), with addresses allocated for names that have none a pod
// can reach (this node's ClusterIPs are on loopback, which capture never sees).
const dnsCapture = `{proxy.istio.io/config: '{proxyMetadata: {ISTIO_META_DNS_CAPTURE: "true", ISTIO_META_DNS_AUTO_ALLOCATE: "true"}}'}`

// TestTrafficThroughCapture: unmodified apps (no proxy setting) in pods whose traffic
// istio-init captures: productpage calls http://reviews:9080/ by name (the pod's
// resolv.conf names the cluster resolver, which does not exist here: the agent's DNS proxy
// answers, the sidecar routes the captured connection), the 80/20 split holds, and
// end-user jason's request gets the empty subset's 503 with x-lucid-error.
func TestTrafficThroughCapture(t *testing.T) {
	m := lucidMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	const ns = "capture"
	m.namespace(ctx, t, ns, true)
	start := time.Now()
	m.apply(ctx, t, strings.ReplaceAll(bookinfo(ns, "", 1), "annotations: {}", "annotations: "+dnsCapture))
	for _, d := range []string{"productpage-v1", "reviews-v1", "reviews-v2"} {
		if err := m.waitRollout(ctx, ns, d); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("bookinfo (capture, DNS capture) Ready %s after apply", time.Since(start).Round(10*time.Millisecond))
	pp := m.productpage(ctx, t, ns)
	c := &http.Client{Timeout: 10 * time.Second}
	versions := map[string]int{}
	for range 200 {
		a, err := ask(ctx, c, pp, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Calls[0].Status != 200 {
			t.Fatalf("reviews by name through capture: %+v", a.Calls[0])
		}
		versions[a.Calls[0].Answer.Version]++
	}
	t.Logf("200 requests: reviews %v", versions)
	if versions["v1"] < 130 || versions["v1"] > 190 || versions["v1"]+versions["v2"] != 200 {
		t.Errorf("split %v, want about 160 v1 / 40 v2", versions)
	}
	a, err := ask(ctx, c, pp, map[string]string{"end-user": "jason"})
	if err != nil {
		t.Fatal(err)
	}
	call := a.Calls[0]
	t.Logf("end-user jason: reviews answered %d %q, x-lucid-error %q", call.Status, call.Body, call.LucidError)
	if call.Status != 503 || call.Body != "no healthy upstream" || !strings.Contains(call.LucidError, "v3") {
		t.Errorf("empty subset: %+v, want 503 no healthy upstream with x-lucid-error naming subset v3", call)
	}
}
