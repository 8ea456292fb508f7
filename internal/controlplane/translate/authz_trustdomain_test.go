package translate

import (
	"net/netip"
	"slices"
	"testing"

	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// TestInboundPeerTrustDomains: every inbound mutual-TLS chain accepts peers of the mesh's
// trust domain and its aliases only (URI SAN prefixes spiffe://<td>/), as Istio's.
func TestInboundPeerTrustDomains(t *testing.T) {
	for _, c := range []struct {
		mesh string
		want []string
	}{
		{mesh: "{}", want: []string{"spiffe://cluster.local/"}},
		{mesh: "{trustDomain: td-new, trustDomainAliases: [old-td, td-new]}", want: []string{"spiffe://td-new/", "spiffe://old-td/"}},
	} {
		m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(mtlsMeshYAML)), meshConfig(t, c.mesh))
		m.SetMTLS(true)
		res := Generate(m, &model.Proxy{Type: "sidecar", IP: netip.MustParseAddr("127.0.163.60"), Name: "web", Namespace: "default"})
		n := 0
		for _, fc := range findListener(res, VirtualInbound).GetFilterChains() {
			if fc.GetTransportSocket() == nil {
				continue
			}
			var d tlspb.DownstreamTlsContext
			if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(&d); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sm := range d.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
				if sm.GetSanType() == tlspb.SubjectAltNameMatcher_URI {
					got = append(got, sm.GetMatcher().GetPrefix())
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("mesh %s, chain %s: URI SAN prefixes %q, want %q", c.mesh, fc.GetName(), got, c.want)
			}
			n++
		}
		if n == 0 {
			t.Fatalf("mesh %s: no inbound mutual-TLS chain", c.mesh)
		}
	}
}
