// Package sim holds the tests that cross the control/data-plane boundary without a
// network: the control plane's output (translate) decoded by the data plane's reader
// (xdsclient), and requests simulated through the decoded tables (route, cluster).
package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

// TestEveryGoldenCaseDecodes: whatever translate emits for its golden cases, the sidecar's
// xDS client accepts. A failure here is a NACK waiting to happen.
func TestEveryGoldenCaseDecodes(t *testing.T) {
	dir := "../../internal/controlplane/translate/testdata"
	base, err := os.ReadFile(filepath.Join(dir, "_base.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	n := 0
	for _, path := range cases {
		name := filepath.Base(path)
		if strings.HasPrefix(name, "_") || strings.HasSuffix(name, ".golden.yaml") {
			continue
		}
		n++
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			snap := build(t, nodeOf(string(data)), "", string(base), string(data))
			if len(snap.Listeners) == 0 || len(snap.Clusters) == 0 {
				t.Fatalf("decoded %d listeners and %d clusters", len(snap.Listeners), len(snap.Clusters))
			}
		})
	}
	if n == 0 {
		t.Fatal("no cases")
	}
}

func nodeOf(yaml string) string {
	for _, line := range strings.Split(yaml, "\n") {
		if v, ok := strings.CutPrefix(line, "# proxy: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "sidecar~127.0.10.1~productpage-v1.default~default.svc.cluster.local"
}

// build parses the YAML documents, generates the node's config and decodes it as the
// sidecar would, failing on any diagnostic error or decode error.
func build(t *testing.T, nodeID, meshMode string, docs ...string) *resource.Snapshot {
	t.Helper()
	var objs []*config.Object
	for i, d := range docs {
		o, diags := config.Parse("doc"+string(rune('0'+i))+".yaml", []byte(d))
		for _, x := range diags {
			if x.Level == config.Error {
				t.Fatalf("config: %s", x)
			}
		}
		objs = append(objs, o...)
	}
	mc := config.DefaultMeshConfig()
	if meshMode == "REGISTRY_ONLY" {
		mc.OutboundTrafficPolicy.Mode = meshv1alpha1.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY
	}
	m, _ := model.Build(objs, mc)
	p, err := model.ParseNodeID(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	res := translate.Generate(m, m.ResolveProxy(p))
	snap := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{}, Routes: map[string]*resource.RouteConfig{},
		Clusters: map[string]*resource.Cluster{}, Endpoints: map[string]*resource.Endpoints{},
	}
	for _, msg := range res.Listeners {
		l, err := xdsclient.DecodeListener(msg.(*listenerpb.Listener))
		if err != nil {
			t.Fatalf("the sidecar would NACK listener: %v", err)
		}
		snap.Listeners[l.Name] = l
	}
	for _, msg := range res.Routes {
		r, err := xdsclient.DecodeRouteConfig(msg.(*routepb.RouteConfiguration))
		if err != nil {
			t.Fatalf("the sidecar would NACK route config: %v", err)
		}
		snap.Routes[r.Name] = r
	}
	for _, msg := range res.Clusters {
		c, err := xdsclient.DecodeCluster(msg.(*clusterpb.Cluster))
		if err != nil {
			t.Fatalf("the sidecar would NACK cluster: %v", err)
		}
		snap.Clusters[c.Name] = c
	}
	for _, msg := range res.Endpoints {
		e, err := xdsclient.DecodeEndpoints(msg.(*endpointpb.ClusterLoadAssignment))
		if err != nil {
			t.Fatalf("the sidecar would NACK endpoints: %v", err)
		}
		snap.Endpoints[e.ClusterName] = e
	}
	return snap
}
