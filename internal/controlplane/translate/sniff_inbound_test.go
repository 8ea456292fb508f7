package translate

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

const inboundSniffMeshYAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app}
spec:
  hosts: [app.default.svc.cluster.local]
  ports: [{number: 7000, name: lines}, {number: 8080, name: web}, {number: 5432, name: db, protocol: TCP}]
  resolution: STATIC
  workloadSelector: {labels: {app: app}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: app}
spec: {address: 127.0.163.62, labels: {app: app}, serviceAccount: app-sa}
`

// inboundChains lists virtualInbound's chains for port as "transport ALPNs → filter".
func inboundChains(t *testing.T, permissive bool, port uint32) ([]string, []string) {
	t.Helper()
	m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(inboundSniffMeshYAML)), nil)
	m.SetMTLS(permissive)
	res := Generate(m, &model.Proxy{Type: "sidecar", IP: netip.MustParseAddr("127.0.163.62"), Name: "app", Namespace: "default"})
	vi := findListener(res, VirtualInbound)
	if err := vi.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	var chains, filters []string
	for _, fc := range vi.GetFilterChains() {
		mt := fc.GetFilterChainMatch()
		if mt.GetDestinationPort().GetValue() != port {
			continue
		}
		f := fc.GetFilters()[len(fc.GetFilters())-1].GetName()
		if fc.GetTransportSocket() != nil {
			f += " (mutual TLS)"
		}
		chains = append(chains, mt.GetTransportProtocol()+" "+strings.Join(mt.GetApplicationProtocols(), ",")+" → "+f)
	}
	for _, lf := range vi.GetListenerFilters() {
		filters = append(filters, lf.GetName())
	}
	return chains, filters
}

// An undeclared inbound port gets an HTTP chain for plaintext HTTP and a TCP chain for the
// rest, TLS included, with both inspectors; a declared TCP port keeps its one chain, which
// nothing inspects (a server-first protocol is forwarded at once).
func TestInboundSniffingChains(t *testing.T) {
	for _, tc := range []struct {
		name       string
		permissive bool
		port       uint32
		want       []string
		filters    string
	}{
		{"undeclared, no mutual TLS", false, 7000, []string{
			"raw_buffer http/1.0,http/1.1,h2c → " + HCMFilter,
			"raw_buffer  → " + TCPProxyFilter,
			"tls  → " + TCPProxyFilter,
		}, TLSInspectorFilter + " " + HTTPInspectorFilter},
		{"undeclared, PERMISSIVE", true, 8080, []string{
			"tls http/1.0,http/1.1,h2c,istio-http/1.0,istio-http/1.1,istio-h2 → " + HCMFilter + " (mutual TLS)",
			"raw_buffer http/1.0,http/1.1,h2c → " + HCMFilter,
			"tls  → " + TCPProxyFilter + " (mutual TLS)",
			"raw_buffer  → " + TCPProxyFilter,
		}, TLSInspectorFilter + " " + HTTPInspectorFilter},
		{"declared TCP, no mutual TLS", false, 5432, []string{"  → " + TCPProxyFilter}, TLSInspectorFilter + " " + HTTPInspectorFilter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, filters := inboundChains(t, tc.permissive, tc.port)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("chains of port %d:\n%s\nwant:\n%s", tc.port, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if strings.Join(filters, " ") != tc.filters {
				t.Errorf("listener filters %v, want %s", filters, tc.filters)
			}
		})
	}
}
