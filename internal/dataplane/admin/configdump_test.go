package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A proxy's dump as xdsclient writes it (sections in Envoy's order, fields in proto order).
const sampleDump = `{"configs":[
 {"@type":"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump","bootstrap":{"node":{"id":"sidecar~1","cluster":"Kubernetes"}}},
 {"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump","version_info":"v1","dynamic_active_clusters":[
   {"version_info":"v1","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"a","type":"EDS","connect_timeout":"10s"},"last_updated":"2026-01-01T00:00:00Z"},
   {"version_info":"v1","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b","type":"STATIC"}}]},
 {"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","version_info":"v1"},
 {"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump"}]}`

// query is a /config_dump query with the parameters that are not "".
func query(resource, mask, nameRegex string) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"resource": resource, "mask": mask, "name_regex": nameRegex} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func shape(t *testing.T, resource, mask string) (map[string]any, error) {
	t.Helper()
	return shapeQuery(t, query(resource, mask, ""))
}

func shapeQuery(t *testing.T, q url.Values) (map[string]any, error) {
	t.Helper()
	out, err := shapeConfigDump([]byte(sampleDump), q)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return v, nil
}

func compact(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigDumpResourceAndMask(t *testing.T) {
	for _, tc := range []struct {
		name, resource, mask, want string
	}{
		{name: "secrets section added", want: `"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}]}`},
		{name: "resource", resource: "dynamic_active_clusters",
			want: `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","connect_timeout":"10s","name":"a","type":"EDS"},"last_updated":"2026-01-01T00:00:00Z","version_info":"v1"},` +
				`{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b","type":"STATIC"},"version_info":"v1"}]}`},
		{name: "resource and mask", resource: "dynamic_active_clusters", mask: "cluster.name,version_info",
			want: `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"a"},"version_info":"v1"},` +
				`{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b"},"version_info":"v1"}]}`},
		{name: "an empty repeated field", resource: "dynamic_listeners", want: `{}`},
		{name: "mask on every section", mask: "version_info,bootstrap.node.id",
			want: `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump","bootstrap":{"node":{"id":"sidecar~1"}}},` +
				`{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump","version_info":"v1"},` +
				`{"@type":"type.googleapis.com/envoy.admin.v3.ListenersConfigDump","version_info":"v1"},` +
				`{"@type":"type.googleapis.com/envoy.admin.v3.RoutesConfigDump"},{"@type":"type.googleapis.com/envoy.admin.v3.SecretsConfigDump"}]}`},
	} {
		v, err := shape(t, tc.resource, tc.mask)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := compact(t, v); !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestConfigDumpResourceErrors(t *testing.T) {
	for _, tc := range []struct {
		resource string
		code     int
		msg      string
	}{
		{"version_info", http.StatusBadRequest, "version_info is not a repeated field. Use ?mask=version_info to get only this field"},
		{"bootstrap", http.StatusBadRequest, "bootstrap is not a repeated field. Use ?mask=bootstrap to get only this field"},
		{"dynamic_endpoint_configs", http.StatusNotFound, "dynamic_endpoint_configs not found in config dump"}, // no ?include_eds
		{"nonsense", http.StatusNotFound, "nonsense not found in config dump"},
	} {
		_, err := shape(t, tc.resource, "")
		var de *dumpError
		if !errors.As(err, &de) || de.code != tc.code || de.msg != tc.msg {
			t.Errorf("resource %s: %v, want %d %q", tc.resource, err, tc.code, tc.msg)
		}
	}
}

// The query parameters are the caller's: any resource, mask and name_regex give an answer
// or a refusal, and the answer is JSON.
func FuzzConfigDumpQuery(f *testing.F) {
	f.Add("dynamic_active_clusters", "cluster.name", "")
	f.Add("", "bootstrap.node,version_info", "a|b")
	f.Add("version_info", "", "(")
	f.Add("", ",.,..a", ".*")
	f.Fuzz(func(t *testing.T, resource, mask, nameRegex string) {
		out, err := shapeConfigDump([]byte(sampleDump), query(resource, mask, nameRegex))
		if err != nil {
			if de := (*dumpError)(nil); !errors.As(err, &de) {
				t.Fatalf("resource %q mask %q name_regex %q: %v", resource, mask, nameRegex, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("resource %q mask %q name_regex %q: not JSON:\n%s", resource, mask, nameRegex, out)
		}
	})
}

func TestConfigDumpNameRegex(t *testing.T) {
	v, err := shapeQuery(t, query("dynamic_active_clusters", "cluster.name", "b|c"))
	if err != nil {
		t.Fatal(err)
	}
	if got := compact(t, v); got != `{"configs":[{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"b"}}]}` {
		t.Errorf("name_regex b|c: %s", got)
	}
	// The whole name must match, and the bootstrap is never filtered.
	v, err = shapeQuery(t, query("", "", "a.*x"))
	if err != nil {
		t.Fatal(err)
	}
	if got := compact(t, v); strings.Contains(got, `"name":"a"`) || !strings.Contains(got, `"id":"sidecar~1"`) {
		t.Errorf("name_regex a.*x: %s", got)
	}
	_, err = shapeQuery(t, query("", "", "("))
	var de *dumpError
	if !errors.As(err, &de) || de.code != http.StatusBadRequest || !strings.HasPrefix(de.msg, "INVALID_ARGUMENT: Invalid regex '('") {
		t.Errorf("an invalid name_regex: %v", err)
	}
}
