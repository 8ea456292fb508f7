package istioctl

import (
	"fmt"
	"strings"
	"testing"

	adminpb "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"istio.io/istio/istioctl/pkg/writer/envoy/configdump"

	// The resource types inside the dump's Anys, for protojson.
	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/version"
)

// istioctl's other views of a config dump: the bootstrap summary names the build (not
// 0.0.0), `proxy-config secret` finds the section (empty until the proxy has certificates),
// `proxy-config all` prints every section; ?resource= and ?mask= answer as Envoy, in
// messages Envoy's own protos decode.
func TestIstioctlReadsEverySection(t *testing.T) {
	m := startMesh(t)
	admin := testutil.Admin("127.0.171.110")
	waitRoutes(t, m, admin)
	dump := get(t, "http://"+admin+"/config_dump?include_eds")

	v := version.Get()
	sem := "0.0.0-" + v.Version
	if n, _ := fmt.Sscanf(strings.TrimPrefix(v.Version, "v"), "%d.%d.%d", new(int), new(int), new(int)); n == 3 {
		sem = strings.TrimPrefix(v.Version, "v")
	}
	status := "Clean"
	if v.Modified {
		status = "Modified"
	}
	wantVersion := "Envoy Version: " + sem + "/" + status + "/RELEASE/" + v.Go + "\n"
	if got := istioctl(t, dump, func(w *configdump.ConfigWriter) error { return w.PrintBootstrapSummary() }); got != wantVersion {
		t.Errorf("istioctl's bootstrap summary: %q, want %q", got, wantVersion)
	}
	if got := istioctl(t, dump, func(w *configdump.ConfigWriter) error { return w.PrintSecretSummary() }); got != "No active or warming secrets found.\n" {
		t.Errorf("istioctl proxy-config secret: %q", got)
	}
	all := istioctl(t, dump, func(w *configdump.ConfigWriter) error {
		return w.PrintFullSummary(configdump.ClusterFilter{}, configdump.ListenerFilter{Verbose: true},
			configdump.RouteFilter{Verbose: true}, configdump.EndpointFilter{}, true)
	})
	for _, want := range []string{"------ BOOTSTRAP INFO ------", "outbound|9080|v1|reviews.default.svc.cluster.local",
		"------ SECRET INFO ------", "------ ENDPOINTS INFO ------", "127.0.171.112:9080"} {
		if !strings.Contains(all, want) {
			t.Errorf("istioctl proxy-config all lacks %q:\n%s", want, all)
		}
	}

	decode := func(path string) *adminpb.ConfigDump {
		t.Helper()
		var d adminpb.ConfigDump
		if err := protojson.Unmarshal(get(t, "http://"+admin+path), &d); err != nil {
			t.Fatalf("%s: Envoy's protos cannot read it: %v", path, err)
		}
		return &d
	}
	d := decode("/config_dump?resource=dynamic_active_clusters&mask=cluster.name")
	names := map[string]bool{}
	for _, a := range d.GetConfigs() {
		var dc adminpb.ClustersConfigDump_DynamicCluster
		if err := a.UnmarshalTo(&dc); err != nil {
			t.Fatalf("resource element %s: %v", a.GetTypeUrl(), err)
		}
		if dc.GetVersionInfo() != "" || dc.GetLastUpdated() != nil {
			t.Errorf("the mask kept more than cluster.name: %v", &dc)
		}
		var c clusterpb.Cluster
		if err := dc.GetCluster().UnmarshalTo(&c); err != nil {
			t.Fatalf("a masked cluster: %v", err)
		}
		names[c.GetName()] = true
	}
	if !names["outbound|9080|v2|reviews.default.svc.cluster.local"] || !names["PassthroughCluster"] {
		t.Errorf("?resource=dynamic_active_clusters&mask=cluster.name: %v", names)
	}
	d = decode("/config_dump?mask=version_info")
	var types []string
	for _, a := range d.GetConfigs() {
		types = append(types, strings.TrimPrefix(a.GetTypeUrl(), "type.googleapis.com/envoy.admin.v3."))
	}
	if strings.Join(types, " ") != "BootstrapConfigDump ClustersConfigDump ListenersConfigDump RoutesConfigDump SecretsConfigDump" {
		t.Errorf("the sections: %v", types)
	}
}
