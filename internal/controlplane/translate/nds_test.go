package translate

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

const ndsMesh = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.20]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.10.0.11}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.example.com]
  resolution: DNS
  ports: [{number: 6379, name: tcp, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [none.example.com]
  resolution: NONE
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: default}
spec:
  hosts: ["*.wild.example.com"]
  resolution: NONE
  ports: [{number: 443, name: tls, protocol: TLS}]
`

// ratingsService is a Kubernetes Service as source/kube makes it.
func ratingsService() *config.Object {
	objs, _ := config.Parse("kube", []byte(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings.default.svc.cluster.local]
  addresses: [10.96.0.30]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
`))
	objs[0].Kind = model.KindKubernetesService
	return objs[0]
}

func TestNameTable(t *testing.T) {
	m, _ := model.Build(append(loadObjects(t, "mesh.yaml", []byte(ndsMesh)), ratingsService()), nil)
	p := &model.Proxy{Type: model.ProxySidecar, IP: netip.MustParseAddr("10.10.0.2"), Name: "productpage", Namespace: "default"}
	var c Cache
	c.Update(m, model.Full)

	got := tableOf(t, c.NameTable(p, false))
	want := nds.Table{
		"reviews.default.svc.cluster.local": {IPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Registry: nds.RegistryExternal},
		"ratings.default.svc.cluster.local": {IPs: []netip.Addr{netip.MustParseAddr("10.96.0.30")}, Registry: nds.RegistryKubernetes, ShortName: "ratings", Namespace: "default"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("without auto-allocation:\n got %v\nwant %v", got, want)
	}

	auto := tableOf(t, c.NameTable(p, true))
	alloc := nds.AutoAllocate([]string{"default/cache.example.com", "default/db.example.com"})
	for _, h := range []string{"db.example.com", "cache.example.com"} {
		ip := alloc["default/"+h]
		if !strings.HasPrefix(ip.String(), "240.240.") || !reflect.DeepEqual(auto[h].IPs, []netip.Addr{ip}) {
			t.Errorf("%s: %v, want the auto-allocated %v", h, auto[h].IPs, ip)
		}
	}
	for _, h := range []string{"none.example.com", "*.wild.example.com"} {
		if _, ok := auto[h]; ok {
			t.Errorf("%s (resolution NONE, no address) is in the table: %v", h, auto[h])
		}
	}
	if len(auto) != 4 {
		t.Errorf("auto-allocated table %v, want 4 hosts", auto)
	}

	// A Service whose ClusterIP is on loopback (a single-node cluster's range) resolves to an
	// allocated address when allocation is on: a pod's loopback is never captured.
	lo := ratingsService()
	lo.Spec.(*networkingv1alpha3.ServiceEntry).Addresses = []string{"127.1.0.30"}
	mlo, _ := model.Build([]*config.Object{lo}, nil)
	var clo Cache
	clo.Update(mlo, model.Full)
	if got := tableOf(t, clo.NameTable(p, false))["ratings.default.svc.cluster.local"].IPs; len(got) != 1 || got[0].String() != "127.1.0.30" {
		t.Errorf("loopback ClusterIP without allocation: %v, want the registry's 127.1.0.30", got)
	}
	if got := tableOf(t, clo.NameTable(p, true))["ratings.default.svc.cluster.local"].IPs; len(got) != 1 || !strings.HasPrefix(got[0].String(), "240.240.") {
		t.Errorf("loopback ClusterIP with allocation: %v, want an address from 240.240.0.0/16", got)
	}

	// Stable across pushes: a new mesh with another ServiceEntry keeps the addresses.
	more := ndsMesh + "---\n" + strings.ReplaceAll(strings.SplitN(ndsMesh, "---\n", 3)[1], "db", "other")
	m2, _ := model.Build(append(loadObjects(t, "mesh.yaml", []byte(more)), ratingsService()), nil)
	c.Update(m2, model.Full)
	again := tableOf(t, c.NameTable(p, true))
	for _, h := range []string{"db.example.com", "cache.example.com"} {
		if !reflect.DeepEqual(again[h].IPs, auto[h].IPs) {
			t.Errorf("%s moved from %v to %v when another ServiceEntry came", h, auto[h].IPs, again[h].IPs)
		}
	}
	if len(again["other.example.com"].IPs) != 1 {
		t.Errorf("the new ServiceEntry got no address: %v", again)
	}
}

func tableOf(t *testing.T, g *Group) nds.Table {
	t.Helper()
	if len(g.Messages()) != 1 {
		t.Fatalf("%d name table resources, want 1", len(g.Messages()))
	}
	b, err := proto.Marshal(g.Messages()[0])
	if err != nil {
		t.Fatal(err)
	}
	tab, err := nds.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
