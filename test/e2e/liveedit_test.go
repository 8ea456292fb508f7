package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The live-edit mesh: a client and reviews v1/v2 on 127.0.142.x, apps on 127.0.142.10x.
var liveEditBase = meshtest.HTTPService("reviews") + `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: curl}
spec: {address: 127.0.142.1, labels: {app: curl}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, annotations: {lucid.dev/app-address: 127.0.142.102}}
spec: {address: 127.0.142.2, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, annotations: {lucid.dev/app-address: 127.0.142.103}}
spec: {address: 127.0.142.3, labels: {app: reviews, version: v2}}
`

// liveEdit is edit i: every edit routes all of reviews' traffic to a cluster that did not
// exist before it and drops the one the previous edit used. Two edits in three route to
// a new subset (s<i>) of reviews; every third routes to a new service (extra-<i>, the same
// workloads under another host). Even edits go to v1, odd ones to v2.
func liveEdit(i int) (yaml, version string) {
	version = "v1"
	if i%2 == 1 {
		version = "v2"
	}
	dest := fmt.Sprintf("{host: reviews, subset: s%d}", i)
	var extra string
	if i%3 == 2 {
		dest = fmt.Sprintf("{host: extra-%d.default.svc.cluster.local}", i)
		extra = fmt.Sprintf(`
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: extra-%d}
spec:
  hosts: [extra-%d.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews, version: %s}}`, i, i, version)
	}
	return fmt.Sprintf(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: s%d, labels: {version: %s}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: %s}]}]%s
`, i, version, dest, extra), version
}

// Live edits under load fail no request: each of 120 edits brings a cluster the route
// then uses and removes the cluster the previous route used. The control plane sends the
// new cluster and its endpoints before the route that uses it, and removes the old cluster
// only after the route stopped using it, as Envoy's warming expects.
func TestLiveEditsDropNoRequest(t *testing.T) {
	const edits = 120
	first, _ := liveEdit(0)
	m := meshtest.StartWith(t, meshtest.Options{PollInterval: 10 * time.Millisecond, Debounce: 10 * time.Millisecond},
		map[string]string{"base.yaml": liveEditBase, "routing.yaml": first},
		[]meshtest.Workload{
			{Name: "curl", IP: "127.0.142.1", Labels: map[string]string{"app": "curl"}},
			{Name: "reviews-v1", IP: "127.0.142.2", AppIP: "127.0.142.102", Ports: []int{9080}, Version: "v1", Labels: map[string]string{"app": "reviews", "version": "v1"}},
			{Name: "reviews-v2", IP: "127.0.142.3", AppIP: "127.0.142.103", Ports: []int{9080}, Version: "v2", Labels: map[string]string{"app": "reviews", "version": "v2"}},
		})
	c := m.Client("127.0.142.1")

	load := meshtest.StartLoad(c, "http://reviews:9080/reviews", 8)
	for i := 1; i <= edits; i++ {
		yaml, version := liveEdit(i)
		m.WriteFile("routing.yaml", yaml)
		testutil.Eventually(t, 5*time.Second, fmt.Sprintf("edit %d (to %s) in effect", i, version), func() bool {
			a := get(t, c, "http://reviews:9080/probe")
			return a.status == 200 && a.echo.Version == version
		})
	}
	sent, failures := load.Stop()
	if len(failures) != 0 {
		if dir := os.Getenv("LIVEEDIT_LOGS"); dir != "" {
			_ = os.WriteFile(dir, []byte(m.Logs.String()), 0o644)
		}
		t.Fatalf("%d of %d requests failed during %d live edits; first: %s", len(failures), sent, edits, strings.Join(failures[:min(5, len(failures))], "; "))
	}
	if sent < 10*edits {
		t.Fatalf("only %d requests during %d edits", sent, edits)
	}
	t.Logf("%d requests during %d edits, none failed", sent, edits)
}
