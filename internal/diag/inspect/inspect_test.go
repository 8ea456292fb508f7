package inspect

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/admin"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseConfigDump(t *testing.T) {
	d, err := ParseConfigDump(read(t, "curl.config_dump.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Node.GetId() != "sidecar~127.0.94.9~curl.default~default.svc.cluster.local" || !d.HasEDS {
		t.Errorf("node %q, eds %v", d.Node.GetId(), d.HasEDS)
	}
	s, err := d.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Listeners) != 3 || len(s.Routes) != 1 || len(s.Clusters) != 9 || len(s.Endpoints) != 6 {
		t.Errorf("decoded %d listeners, %d routes, %d clusters, %d endpoints", len(s.Listeners), len(s.Routes), len(s.Clusters), len(s.Endpoints))
	}
	v3 := s.Clusters["outbound|9080|v3|reviews.default.svc.cluster.local"]
	if v3 == nil || v3.Info.Selector["version"] != "v3" || v3.Info.ServiceCluster == "" {
		t.Errorf("v3 cluster's lucid metadata not decoded: %+v", v3)
	}
	if d.Versions["CDS"] == "" {
		t.Error("no CDS version")
	}
}

func TestParseClusters(t *testing.T) {
	cs, err := ParseClusters(read(t, "curl.clusters.json"))
	if err != nil {
		t.Fatal(err)
	}
	h := Host(cs, "outbound|9080|v1|reviews.default.svc.cluster.local", "127.0.94.12:9080")
	if h == nil || h.EDSHealth != "HEALTHY" || h.Ejected() {
		t.Errorf("v1 host: %+v", h)
	}
	if Host(cs, "outbound|9080|v3|reviews.default.svc.cluster.local", "127.0.94.14:9080") != nil {
		t.Error("v3 has a host")
	}
}

func TestFindProxy(t *testing.T) {
	var st []contract.ProxyStatus
	if err := json.Unmarshal(read(t, "syncz.json"), &st); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"reviews-v3", "reviews-v3.default"} {
		p, err := FindProxy(st, name)
		if err != nil || p.IP != "127.0.94.14" {
			t.Errorf("%s: %+v %v", name, p, err)
		}
	}
	_, err := FindProxy(st, "reviews-v9")
	if err == nil || err.Error() != `no proxy named "reviews-v9"; the control plane knows: curl.default, productpage.default, ratings.default, reviews-v1.default, reviews-v2.default, reviews-v3.default` {
		t.Errorf("unknown workload: %v", err)
	}
}

func FuzzParseConfigDump(f *testing.F) {
	f.Add(read(f, "curl.config_dump.json"))
	f.Add([]byte(`{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseConfigDump(b)
		if err == nil {
			_, _ = d.Snapshot()
		}
	})
}

func FuzzParseClusters(f *testing.F) {
	f.Add(read(f, "curl.clusters.json"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseClusters(b) })
}

func FuzzParseNodeID(f *testing.F) {
	f.Add("sidecar~127.0.94.9~curl.default~default.svc.cluster.local")
	f.Fuzz(func(t *testing.T, id string) {
		if p, ok := ParseNodeID(id); ok && p.ID != id {
			t.Fatal("id changed")
		}
	})
}

// TestParseClustersIdle: the learned idle timeouts a sidecar's /clusters?format=json
// carries (admin.ClustersJSON) come back as the pool wrote them.
func TestParseClustersIdle(t *testing.T) {
	hosts := []admin.HostStatus{
		{Address: "127.0.94.15:9080", Idle: &admin.IdleTimeout{Timeout: 300 * time.Millisecond, Closes: 4, ReuseLimit: 259 * time.Millisecond}},
		{Address: "127.0.94.16:9080", Idle: &admin.IdleTimeout{Timeout: 5 * time.Second, ReuseLimit: 4 * time.Second}},
		{Address: "127.0.94.17:9080", Idle: &admin.IdleTimeout{ReuseLimit: 900 * time.Millisecond}},
		{Address: "127.0.94.18:9080", Idle: &admin.IdleTimeout{ReuseLimit: -1}},
		{Address: "127.0.94.19:9080"},
	}
	b, err := admin.ClustersJSON([]admin.ClusterStatus{{Name: "c", Hosts: hosts}})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ParseClusters(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"300ms (learned from 4 upstream closes) below 259ms",
		"5s (Keep-Alive header) below 4s",
		"unknown below 900ms",
		"unknown below -1ns",
		"",
	}
	for i, h := range hosts {
		got := ""
		if i := Host(cs, "c", h.Address).Idle; i != nil {
			got = fmt.Sprintf("%s below %s", i, i.ReuseLimit)
		}
		if got != want[i] {
			t.Errorf("%s: %q, want %q", h.Address, got, want[i])
		}
	}
}
