package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// startDiscovery runs the control plane on dir (polled every 10 ms) and returns its ADS
// address.
func startDiscovery(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- discovery.Run(ctx, discovery.Options{
			ConfigDir: dir, GRPCAddr: "127.0.144.1:0", PollInterval: 10 * time.Millisecond, Debounce: 10 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler), Ready: func(a string) { addr <- a },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("discovery: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("discovery: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("discovery did not publish within 10s")
	}
	return ""
}

// nopApplier accepts everything.
type nopApplier struct{}

func (nopApplier) Apply(*resource.Snapshot) error { return nil }

func startXDSClient(t *testing.T, ads, node, protocol string) *xdsclient.Client {
	t.Helper()
	c := xdsclient.New(xdsclient.Options{Server: ads, NodeID: node, Applier: nopApplier{}, Protocol: protocol,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("xdsclient: %v", err)
		}
	})
	return c
}

// resourcesOf is a client's accepted resources as JSON per name, without versions and
// update times (the two protocols version responses differently).
func resourcesOf(t *testing.T, c *xdsclient.Client) map[string]string {
	t.Helper()
	raw, err := c.ConfigDump(true)
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		Configs []map[string]json.RawMessage `json:"configs"`
	}
	if err := json.Unmarshal(raw, &dump); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, section := range dump.Configs {
		for key, v := range section {
			if !strings.HasPrefix(key, "dynamic_") {
				continue
			}
			var items []map[string]json.RawMessage
			if json.Unmarshal(v, &items) != nil {
				continue
			}
			for _, it := range items {
				delete(it, "version_info")
				delete(it, "last_updated")
				if st, ok := it["active_state"]; ok {
					var m map[string]json.RawMessage
					_ = json.Unmarshal(st, &m)
					delete(m, "version_info")
					delete(m, "last_updated")
					it["active_state"], _ = json.Marshal(m)
				}
				b, _ := json.Marshal(it)
				out[key+" "+string(b)] = string(b)
			}
		}
	}
	return out
}

func sameResources(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// A delta client and a state-of-the-world client of the same node hold the same resources
// after every step of random churn: endpoints added and removed, services added and
// removed, subsets and weights changed.
func TestDeltaAndSotWConverge(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p+".tmp", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(21, 15))
	state := &churn{services: map[int]bool{0: true, 1: true}, endpoints: map[int]int{0: 2, 1: 1}, subsets: 1, weight: 50}
	write("mesh.yaml", state.yaml(0))
	ads := startDiscovery(t, dir)
	const node = "sidecar~127.0.144.2~client.default~default.svc.cluster.local"
	delta := startXDSClient(t, ads, node, xdsclient.ProtocolDelta)
	sotw := startXDSClient(t, ads, node, xdsclient.ProtocolSotW)

	for step := 1; step <= 40; step++ {
		state.mutate(rng)
		write("mesh.yaml", state.yaml(step))
		marker := fmt.Sprintf("marker-%d.default.svc.cluster.local", step)
		testutil.EventuallyWhy(t, 10*time.Second, fmt.Sprintf("step %d (%s): the clients converged", step, state), func() (bool, string) {
			d, s := resourcesOf(t, delta), resourcesOf(t, sotw)
			return has(d, marker) && has(s, marker) && sameResources(d, s),
				fmt.Sprintf("delta has %d resources (marker %v), SotW %d (marker %v)", len(d), has(d, marker), len(s), has(s, marker))
		})
	}
	if p := delta.Status().Protocol; p != xdsclient.ProtocolDelta {
		t.Errorf("the delta client used %q", p)
	}
}

func has(res map[string]string, s string) bool {
	for k := range res {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// churn is the random mesh of TestDeltaAndSotWConverge.
type churn struct {
	services  map[int]bool
	endpoints map[int]int // per service, how many workloads
	subsets   int
	weight    int
}

func (c *churn) String() string {
	return fmt.Sprintf("services %v endpoints %v subsets %d weight %d", c.services, c.endpoints, c.subsets, c.weight)
}

func (c *churn) mutate(rng *rand.Rand) {
	switch rng.IntN(5) {
	case 0: // a service appears or goes
		i := rng.IntN(4)
		c.services[i] = !c.services[i]
		if c.endpoints[i] == 0 {
			c.endpoints[i] = 1
		}
	case 1, 2: // an endpoint appears or goes
		i := rng.IntN(4)
		c.endpoints[i] = (c.endpoints[i] + 1 + rng.IntN(2)) % 4
	case 3:
		c.subsets = 1 + rng.IntN(3)
	case 4:
		c.weight = rng.IntN(101)
	}
	c.services[0] = true // the VirtualService routes svc-0
}

func (c *churn) yaml(step int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: marker}
spec:
  hosts: [marker-%d.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 7000, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.144.200}]
`, step)
	for i := range 4 {
		if !c.services[i] {
			continue
		}
		fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc-%d}
spec:
  hosts: [svc-%d.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}, {number: 9000, name: tcp, protocol: TCP}]
  workloadSelector: {labels: {app: svc-%d}}
`, i, i, i)
		for j := range c.endpoints[i] {
			fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: svc-%d-%d}
spec: {address: 127.0.144.%d, labels: {app: svc-%d, version: v%d}}
`, i, j, 10+10*i+j, i, j%2+1)
		}
	}
	fmt.Fprintf(&b, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc-0}\nspec:\n  host: svc-0\n  subsets:\n")
	for k := 1; k <= c.subsets; k++ {
		fmt.Fprintf(&b, "  - {name: v%d, labels: {version: v%d}}\n", k, k)
	}
	fmt.Fprintf(&b, `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-0}
spec:
  hosts: [svc-0]
  http:
  - route:
    - {destination: {host: svc-0, subset: v1}, weight: %d}
    - {destination: {host: svc-0}, weight: %d}
`, c.weight, 100-c.weight)
	return b.String()
}
