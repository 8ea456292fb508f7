package kube

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

const reviewsHost = "reviews.default.svc.cluster.local"

// TestServiceEndpointsReachSidecar: a Service + EndpointSlice + Pods with labels + a
// DestinationRule with subsets reach a connected sidecar as Istio's clusters and
// endpoints, it routes to the loopback backends, and a pod that loses its version label
// leaves subset v1 within 1 s.
func TestServiceEndpointsReachSidecar(t *testing.T) {
	e := newEnv(t)
	e.apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: default}\n")
	e.backend("127.0.98.11:9080", "reviews-v1")
	e.backend("127.0.98.12:9080", "reviews-v2")
	e.pod("default", "reviews-v1-0", "127.0.98.11", map[string]string{"app": "reviews", "version": "v1"})
	e.pod("default", "reviews-v2-0", "127.0.98.12", map[string]string{"app": "reviews", "version": "v2"})
	e.pod("default", "productpage-0", "127.0.98.10", map[string]string{"app": "productpage", "version": "v1"})
	e.apply(`apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9080}]
---
` + endpointSlice("default", "reviews", "http", 9080, map[string]string{"reviews-v1-0": "127.0.98.11", "reviews-v2-0": "127.0.98.12"}) + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`)
	ads := e.discovery("a")
	e.sidecar("default", "productpage-0", "127.0.98.10", ads)

	// Istio's cluster names, with the subsets' endpoints.
	names := clusterNames("127.0.98.10")
	for _, want := range []string{"outbound|9080||" + reviewsHost, "outbound|9080|v1|" + reviewsHost, "outbound|9080|v2|" + reviewsHost} {
		if !slices.Contains(names, want) {
			t.Errorf("sidecar has no cluster %s; it has %v", want, names)
		}
	}
	for cluster, want := range map[string][]string{
		"outbound|9080||" + reviewsHost:   {"127.0.98.11:9080", "127.0.98.12:9080"},
		"outbound|9080|v1|" + reviewsHost: {"127.0.98.11:9080"},
		"outbound|9080|v2|" + reviewsHost: {"127.0.98.12:9080"},
	} {
		got, err := clusterHosts("127.0.98.10", cluster)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: hosts %v (%v), want %v", cluster, got, err, want)
		}
	}

	// Routing: the VirtualService sends the full name and the short name to v1.
	c := via("127.0.98.10")
	for _, u := range []string{"http://" + reviewsHost + ":9080/", "http://reviews:9080/", "http://reviews.default:9080/"} {
		if code, body := httpGet(c, u); code != http.StatusOK || body != "reviews-v1" {
			t.Errorf("GET %s = %d %q, want 200 reviews-v1", u, code, body)
		}
	}

	// The pod loses its version label: its endpoint leaves subset v1 within 1 s.
	const v1 = "outbound|9080|v1|" + reviewsHost
	start := time.Now()
	e.patchPod("default", "reviews-v1-0", `{"metadata":{"labels":{"version":null}}}`)
	testutil.EventuallyWhy(e.t, 5*time.Second, "endpoint 127.0.98.11 leaves "+v1, func() (bool, string) {
		hosts, err := clusterHosts("127.0.98.10", v1)
		return err == nil && len(hosts) == 0, fmt.Sprint(hosts, err)
	})
	took := time.Since(start)
	t.Logf("the sidecar saw the label change after %s", took)
	if took > time.Second {
		t.Errorf("the endpoint left subset v1 after %s, want within 1s", took)
	}
	if code, body := httpGet(c, "http://reviews:9080/"); code != http.StatusServiceUnavailable || body != "no healthy upstream" {
		t.Errorf("GET reviews with subset v1 empty = %d %q, want 503 no healthy upstream", code, body)
	}
	if hosts, _ := clusterHosts("127.0.98.10", "outbound|9080||"+reviewsHost); len(hosts) != 2 {
		t.Errorf("the service itself keeps both endpoints, got %v", hosts)
	}
}

// badVS is accepted by the CRD's schema but not by Istio's validation.
const badVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad, namespace: kube-rep}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
    mirror: {host: ratings}
    mirrorPercentage: {value: 150}
`

// TestReplicasAndBadVirtualService: two discovery replicas, each with its own informers,
// serve the same configuration to their sidecars; a bad VirtualService gets one Warning
// Event with file mode's field-level message, and everything else keeps serving.
func TestReplicasAndBadVirtualService(t *testing.T) {
	e := newEnv(t)
	const ns = "kube-rep"
	e.namespace(ns)
	e.backend("127.0.98.31:8080", "ratings")
	e.pod(ns, "ratings-0", "127.0.98.31", map[string]string{"app": "ratings", "version": "v1"})
	e.pod(ns, "client-a", "127.0.98.20", map[string]string{"app": "client"})
	e.pod(ns, "client-b", "127.0.98.21", map[string]string{"app": "client"})
	e.apply(`apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: kube-rep}
spec:
  selector: {app: ratings}
  ports: [{name: http-web, port: 8080}]
---
` + endpointSlice(ns, "ratings", "http-web", 8080, map[string]string{"ratings-0": "127.0.98.31"}) + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: good, namespace: kube-rep}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings}
    headers:
      response:
        set: {x-route: good}
---
` + badVS)

	adsA, adsB := e.discovery("a"), e.discovery("b")
	e.sidecar(ns, "client-a", "127.0.98.20", adsA)
	e.sidecar(ns, "client-b", "127.0.98.21", adsB)

	for _, ip := range []string{"127.0.98.20", "127.0.98.21"} {
		resp, err := via(ip).Get("http://ratings:8080/")
		if err != nil {
			t.Fatalf("via %s: %v", ip, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("x-route") != "good" {
			t.Errorf("via %s: %d x-route=%q, want 200 through VirtualService good", ip, resp.StatusCode, resp.Header.Get("x-route"))
		}
	}
	a, b := clusterNames("127.0.98.20"), clusterNames("127.0.98.21")
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) || !slices.Contains(a, "outbound|8080||ratings.kube-rep.svc.cluster.local") {
		t.Errorf("replicas serve different clusters:\na: %v\nb: %v", a, b)
	}

	// The message is file mode's, without the file and line.
	_, diags := config.Parse("bad.yaml", []byte(badVS))
	if len(diags) != 1 || diags[0].Level != config.Error {
		t.Fatalf("file mode's verdict on the bad VirtualService: %v", diags)
	}
	want := strings.TrimPrefix(diags[0].String(), fmt.Sprintf("bad.yaml:%d: ", diags[0].Line))
	testutil.EventuallyWhy(e.t, 10*time.Second, "a LucidValidation Event on VirtualService kube-rep/bad", func() (bool, string) {
		evs := e.events(gvrs["VirtualService"], ns, "VirtualService", "bad")
		return len(evs) > 0, fmt.Sprint(len(evs), " events")
	})
	// Give the second replica time to try too; its create finds the same Event name
	// (AlreadyExists), so however late it comes there is still one Event.
	time.Sleep(300 * time.Millisecond)
	evs := e.events(gvrs["VirtualService"], ns, "VirtualService", "bad")
	if len(evs) != 1 {
		t.Errorf("%d Events on VirtualService kube-rep/bad, want 1 (two replicas, one generation)", len(evs))
	}
	ev := evs[0].Object
	if ev["type"] != "Warning" || ev["message"] != want {
		t.Errorf("Event type %v message %q, want Warning %q", ev["type"], ev["message"], want)
	}
	if !strings.HasPrefix(want, "VirtualService kube-rep/bad: spec.http[0].mirrorPercentage.value: ") {
		t.Errorf("message %q does not name the object and field", want)
	}
	if good := e.events(gvrs["VirtualService"], ns, "VirtualService", "good"); len(good) != 0 {
		t.Errorf("Events on the valid VirtualService: %v", good)
	}
}
