package sim

import (
	"fmt"
	"net"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
)

// outcome is where the sidecar would send one request: the cluster(s) of the matched
// route, or the local reply it would give (flag and status).
type outcome struct {
	clusters []string // sorted; more than one for weighted routes
	flag     string   // "NR", "NC", "UH" or "" when routed
	status   int      // local reply status (direct response, redirect, NR...), 0 when routed
}

func (o outcome) String() string {
	if o.flag != "" || o.status != 0 {
		return fmt.Sprintf("%s %d", o.flag, o.status)
	}
	return strings.Join(o.clusters, " + ")
}

// simulate runs a request the way the sidecar's explicit proxy does: the destination
// port selects the outbound listener 0.0.0.0_<port> (or the passthrough chain), its RDS
// route config and virtual host, the first matching route, then the cluster and its
// endpoints.
func simulate(t *testing.T, snap *resource.Snapshot, method, url string, header ...string) outcome {
	t.Helper()
	r := httptest.NewRequest(method, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	port := 80
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port, _ = strconv.Atoi(p)
	}
	l := snap.Listeners["0.0.0.0_"+strconv.Itoa(port)]
	if l == nil {
		vo := snap.Listeners["virtualOutbound"]
		if vo == nil || vo.DefaultChain == nil || vo.DefaultChain.TCP == nil {
			t.Fatalf("no listener for port %d and no passthrough chain", port)
		}
		return clusterOutcome(snap, vo.DefaultChain.TCP.Cluster)
	}
	rc := snap.Routes[l.FilterChains[0].HTTP.RDSName]
	if rc == nil {
		t.Fatalf("route config %q missing", l.FilterChains[0].HTTP.RDSName)
	}
	_, rt := route.Select(rc, r)
	switch {
	case rt == nil:
		return outcome{flag: "NR", status: 404}
	case rt.DirectResponse != nil:
		return outcome{status: rt.DirectResponse.Status}
	case rt.Redirect != nil:
		return outcome{status: rt.Redirect.Code}
	}
	if len(rt.Action.WeightedClusters) == 0 {
		return clusterOutcome(snap, rt.Action.Cluster)
	}
	var o outcome
	for _, wc := range rt.Action.WeightedClusters {
		c := clusterOutcome(snap, wc.Name)
		if c.flag != "" {
			return c
		}
		o.clusters = append(o.clusters, fmt.Sprintf("%s@%d", wc.Name, wc.Weight))
	}
	sort.Strings(o.clusters)
	return o
}

func clusterOutcome(snap *resource.Snapshot, name string) outcome {
	c := snap.Clusters[name]
	if c == nil {
		return outcome{flag: "NC", status: 503}
	}
	if c.Type == resource.EDS {
		eps := snap.Endpoints[c.ServiceName]
		usable := 0
		if eps != nil {
			for i := range eps.Endpoints {
				if eps.Endpoints[i].Usable() {
					usable++
				}
			}
		}
		if usable == 0 {
			return outcome{flag: "UH", status: 503}
		}
	}
	return outcome{clusters: []string{name}}
}

const simMesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: ratings}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: other}
spec:
  hosts: [private.other.svc.cluster.local]
  exportTo: ["."]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8000, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.30.1}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage}
spec: {address: 127.0.30.10, labels: {app: productpage, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.30.11, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.30.12, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3}
spec: {address: 127.0.30.13, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings}
spec: {address: 127.0.30.14, labels: {app: ratings, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - match: [{uri: {prefix: /v3}}]
    route: [{destination: {host: reviews, subset: v3}}]
  - match: [{uri: {prefix: /v9}}]
    route: [{destination: {host: reviews, subset: v9}}]
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new}
  - match: [{uri: {prefix: /static}}]
    directResponse: {status: 418, body: {string: teapot}}
  - match: [{sourceLabels: {app: productpage}, method: {exact: POST}}]
    route: [{destination: {host: ratings}}]
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 80}
    - {destination: {host: reviews, subset: v2}, weight: 20}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{uri: {prefix: /ratings}}]
    route: [{destination: {host: ratings}}]
`

const (
	productpage = "sidecar~127.0.30.10~productpage.default~default.svc.cluster.local"
	ratingsNode = "sidecar~127.0.30.14~ratings.default~default.svc.cluster.local"
	reviewsC    = "outbound|9080|%s|reviews.default.svc.cluster.local"
	ratingsC    = "outbound|9080||ratings.default.svc.cluster.local"
)

func TestSimulatedRequests(t *testing.T) {
	fromProductpage := build(t, productpage, "", simMesh)
	fromRatings := build(t, ratingsNode, "", simMesh)
	registryOnly := build(t, productpage, "REGISTRY_ONLY", simMesh)
	v := func(s string) string { return fmt.Sprintf(reviewsC, s) }

	tests := []struct {
		name   string
		snap   *resource.Snapshot
		method string
		url    string
		header []string
		want   string
	}{
		{"weighted split", fromProductpage, "GET", "http://reviews:9080/", nil, v("v1") + "@80 + " + v("v2") + "@20"},
		{"fqdn host", fromProductpage, "GET", "http://reviews.default.svc.cluster.local:9080/", nil, v("v1") + "@80 + " + v("v2") + "@20"},
		{"header match", fromProductpage, "GET", "http://reviews:9080/", []string{"end-user", "jason"}, v("v2")},
		{"header mismatch falls through", fromProductpage, "GET", "http://reviews:9080/", []string{"end-user", "bob"}, v("v1") + "@80 + " + v("v2") + "@20"},
		{"empty subset is UH", fromProductpage, "GET", "http://reviews:9080/v3/x", nil, "UH 503"},
		{"undefined subset is NC", fromProductpage, "GET", "http://reviews:9080/v9", nil, "NC 503"},
		{"redirect", fromProductpage, "GET", "http://reviews:9080/old", nil, " 301"},
		{"direct response", fromProductpage, "GET", "http://reviews:9080/static/a", nil, " 418"},
		{"sourceLabels match applies to productpage", fromProductpage, "POST", "http://reviews:9080/", nil, ratingsC},
		{"sourceLabels match skipped for ratings", fromRatings, "POST", "http://reviews:9080/", nil, v("v1") + "@80 + " + v("v2") + "@20"},
		{"no route matches is NR", fromProductpage, "GET", "http://ratings:9080/other", nil, "NR 404"},
		{"route matches", fromProductpage, "GET", "http://ratings:9080/ratings/7", nil, ratingsC},
		{"unknown host on a known port: allow_any", fromProductpage, "GET", "http://example.com:9080/", nil, "PassthroughCluster"},
		{"unknown port: passthrough chain", fromProductpage, "GET", "http://example.com:7777/", nil, "PassthroughCluster"},
		{"unknown host, REGISTRY_ONLY: 502", registryOnly, "GET", "http://example.com:9080/", nil, " 502"},
		{"unknown port, REGISTRY_ONLY: blackhole", registryOnly, "GET", "http://example.com:7777/", nil, "BlackHoleCluster"},
		{"exportTo . hides a service from other namespaces", fromProductpage, "GET", "http://private.other.svc.cluster.local:8000/", nil, "PassthroughCluster"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := simulate(t, tc.snap, tc.method, tc.url, tc.header...).String()
			if got != tc.want {
				t.Errorf("%s %s from %s:\n got %s\nwant %s", tc.method, tc.url, tc.name, got, tc.want)
			}
		})
	}
}
