package ads

import (
	"net/netip"
	"reflect"
	"testing"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

// ndsGen serves a name table to proxies that ask for DNS capture, as discovery does.
type ndsGen struct{ part Part }

func (g ndsGen) Generate(node *corepb.Node) (Resources, error) {
	if capture, _ := NodeDNS(node); !capture {
		return Resources{}, nil
	}
	return Resources{nds.TypeURL: {g.part}}, nil
}

// Istio's name table goes over ADS as one unnamed NameTable of its type URL, which Istio's
// decoding (here nds.Unmarshal) reads back.
func TestNameTableOverADS(t *testing.T) {
	table := nds.Table{"reviews.default.svc.cluster.local": {
		IPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Registry: nds.RegistryKubernetes, ShortName: "reviews", Namespace: "default",
	}}
	_, addr := serve(t, ndsGen{NewPart(nds.Message(table))}, nil)
	c := dial(t, addr, "sidecar~10.10.0.2~productpage.default~default.svc.cluster.local", map[string]any{"DNS_CAPTURE": "true"})
	c.request(nds.TypeURL, "", "", nil, "")
	resp := c.next(nds.TypeURL)
	if len(resp.GetResources()) != 1 || resp.GetResources()[0].GetTypeUrl() != nds.TypeURL {
		t.Fatalf("response %v, want one %s", resp.GetResources(), nds.TypeURL)
	}
	got, err := nds.Unmarshal(resp.GetResources()[0].GetValue())
	if err != nil || !reflect.DeepEqual(got, table) {
		t.Fatalf("decoded %v (%v), want %v", got, err, table)
	}
	c.ack(resp, nil)
	c.quiet("the table was acked and nothing changed")
}

func TestNodeDNS(t *testing.T) {
	for _, tc := range []struct {
		meta                map[string]string
		capture, allocation bool
	}{
		{nil, false, false},
		{map[string]string{"DNS_CAPTURE": "true"}, true, false},
		{map[string]string{"DNS_CAPTURE": "true", "DNS_AUTO_ALLOCATE": "true"}, true, true},
		{map[string]string{"DNS_CAPTURE": "yes please"}, false, false},
	} {
		m := map[string]any{}
		for k, v := range tc.meta {
			m[k] = v
		}
		md, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		capture, alloc := NodeDNS(&corepb.Node{Metadata: md})
		if capture != tc.capture || alloc != tc.allocation {
			t.Errorf("%v: capture %t, auto-allocate %t; want %t, %t", tc.meta, capture, alloc, tc.capture, tc.allocation)
		}
	}
}
