package peermeta

import (
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

func TestRoundTrip(t *testing.T) {
	id, md, err := Encode(Workload{NodeID: "sidecar~127.0.10.1~productpage-v1.default~default.svc.cluster.local",
		Name: "productpage-v1-abc", Namespace: "default", WorkloadName: "productpage-v1", ClusterID: "Kubernetes",
		MeshID: "cluster.local", ServiceAccount: "bookinfo-productpage",
		Labels: map[string]string{"app": "productpage", "version": "v1"}})
	if err != nil {
		t.Fatal(err)
	}
	if id != "sidecar~127.0.10.1~productpage-v1.default~default.svc.cluster.local" {
		t.Fatalf("id %q", id)
	}
	got, err := Decode(md)
	if err != nil {
		t.Fatal(err)
	}
	want := streaminfo.Peer{Workload: "productpage-v1", Namespace: "default", App: "productpage", Version: "v1",
		CanonicalService: "productpage", CanonicalRevision: "v1", Cluster: "Kubernetes"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	_, md2, _ := Encode(Workload{Name: "x", Namespace: "default", Labels: map[string]string{"app": "x", "version": "v1"}})
	if _, md3, _ := Encode(Workload{Name: "x", Namespace: "default", Labels: map[string]string{"version": "v1", "app": "x"}}); md2 != md3 {
		t.Fatal("encoding is not deterministic")
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, v := range map[string]string{
		"not base64":     "%%%",
		"not a Struct":   "////",
		"over the bound": string(make([]byte, maxEncoded+1)),
	} {
		if _, err := Decode(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	_, md, _ := Encode(Workload{Name: "a", Namespace: "b", Labels: map[string]string{"app": "c"}})
	f.Add(md)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Decode(s) // must not panic
	})
}
