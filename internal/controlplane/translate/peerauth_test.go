package translate

import (
	"net/netip"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointpb "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

const mtlsMeshYAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 8080, name: http, protocol: HTTP}, {number: 5432, name: db, protocol: TCP}]
  resolution: STATIC
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web}
spec: {address: 127.0.163.60, labels: {app: web}, serviceAccount: web-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: bare, annotations: {sidecar.istio.io/inject: "false"}}
spec: {address: 127.0.163.61, labels: {app: web}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  mtls: {mode: STRICT}
  portLevelMtls: {5432: {mode: PERMISSIVE}}
`

func mtlsResources(t *testing.T, extra string, on bool) *Resources {
	t.Helper()
	m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(mtlsMeshYAML+extra)), nil)
	m.SetMTLS(on)
	return Generate(m, &model.Proxy{Type: "sidecar", IP: netip.MustParseAddr("127.0.163.60"), Name: "web", Namespace: "default"})
}

func findListener(res *Resources, name string) *listenerpb.Listener {
	for _, l := range res.Listeners {
		if l := l.(*listenerpb.Listener); l.GetName() == name {
			return l
		}
	}
	return nil
}

func findCluster(res *Resources, name string) *clusterpb.Cluster {
	for _, c := range res.Clusters {
		if c := c.(*clusterpb.Cluster); c.GetName() == name {
			return c
		}
	}
	return nil
}

// STRICT on 8080 is one mutual-TLS chain; PERMISSIVE on 5432 a mutual-TLS chain and a
// plaintext one; the TLS inspector tells them apart.
func TestInboundPeerAuthenticationChains(t *testing.T) {
	vi := findListener(mtlsResources(t, "", true), VirtualInbound)
	if len(vi.GetListenerFilters()) != 1 || vi.GetListenerFilters()[0].GetName() != TLSInspectorFilter {
		t.Errorf("listener filters %v, want the TLS inspector", vi.GetListenerFilters())
	}
	got := map[uint32][]string{}
	for _, fc := range vi.GetFilterChains() {
		port := fc.GetFilterChainMatch().GetDestinationPort().GetValue()
		tp := fc.GetFilterChainMatch().GetTransportProtocol()
		if tp == "tls" {
			var d tlspb.DownstreamTlsContext
			if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(&d); err != nil {
				t.Fatal(err)
			}
			if !d.GetRequireClientCertificate().GetValue() || d.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs()[0].GetName() != "default" ||
				d.GetCommonTlsContext().GetCombinedValidationContext().GetValidationContextSdsSecretConfig().GetName() != "ROOTCA" {
				t.Errorf("port %d: TLS context %v", port, &d)
			}
		}
		mode := fc.GetMetadata().GetFilterMetadata()["lucid"].GetFields()["mtls"].GetStructValue().GetFields()["mode"].GetStringValue()
		got[port] = append(got[port], tp+"/"+mode)
	}
	if want := []string{"tls/STRICT"}; len(got[8080]) != 1 || got[8080][0] != want[0] {
		t.Errorf("8080 chains %v, want %v", got[8080], want)
	}
	if len(got[5432]) != 2 || got[5432][0] != "tls/PERMISSIVE" || got[5432][1] != "raw_buffer/PERMISSIVE" {
		t.Errorf("5432 chains %v, want tls and raw_buffer", got[5432])
	}
	if err := vi.ValidateAll(); err != nil {
		t.Error(err)
	}
}

// Auto mTLS: ISTIO_MUTUAL with Istio's SNI and the service's accounts to endpoints with a
// sidecar (tlsMode istio), plaintext to the WorkloadEntry without one.
func TestAutoMTLSCluster(t *testing.T) {
	res := mtlsResources(t, "", true)
	c := findCluster(res, "outbound|8080||web.default.svc.cluster.local")
	ms := c.GetTransportSocketMatches()
	if len(ms) != 2 || ms[0].GetName() != "tlsMode-istio" || ms[1].GetName() != "tlsMode-disabled" {
		t.Fatalf("transport_socket_matches %v", ms)
	}
	var up tlspb.UpstreamTlsContext
	if err := ms[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	sans := up.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchTypedSubjectAltNames()
	if up.GetSni() != "outbound_.8080_._.web.default.svc.cluster.local" || len(sans) != 1 || sans[0].GetMatcher().GetExact() != "spiffe://cluster.local/ns/default/sa/web-sa" {
		t.Errorf("ISTIO_MUTUAL context: sni %q sans %v", up.GetSni(), sans)
	}
	if err := c.ValidateAll(); err != nil {
		t.Error(err)
	}
	for _, e := range res.Endpoints {
		cla := e.(*endpointpb.ClusterLoadAssignment)
		if cla.GetClusterName() != c.GetName() {
			continue
		}
		modes := map[string]string{}
		for _, lbe := range cla.GetEndpoints()[0].GetLbEndpoints() {
			modes[lbe.GetEndpoint().GetAddress().GetSocketAddress().GetAddress()] = lbe.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"].GetFields()["tlsMode"].GetStringValue()
		}
		if modes["127.0.163.60"] != "istio" || modes["127.0.163.61"] != "" {
			t.Errorf("endpoint tlsMode %v", modes)
		}
	}
	// Without the mesh CA nothing asks for mutual TLS.
	off := mtlsResources(t, "", false)
	if c := findCluster(off, "outbound|8080||web.default.svc.cluster.local"); len(c.GetTransportSocketMatches()) > 0 || c.GetTransportSocket() != nil {
		t.Error("mutual TLS configured without workload certificates")
	}
	if vi := findListener(off, VirtualInbound); len(vi.GetListenerFilters()) > 0 {
		t.Error("TLS inspector without workload certificates")
	}
}

// A DestinationRule's tls wins over auto mTLS: DISABLE sends plaintext, SIMPLE originates
// TLS with its CA file.
func TestDestinationRuleTLS(t *testing.T) {
	dr := `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: DISABLE}
    portLevelSettings:
    - port: {number: 5432}
      tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, sni: db.example.com}
`
	res := mtlsResources(t, dr, true)
	http := findCluster(res, "outbound|8080||web.default.svc.cluster.local")
	if http.GetTransportSocket() != nil || len(http.GetTransportSocketMatches()) > 0 {
		t.Errorf("DISABLE: transport %v %v", http.GetTransportSocket(), http.GetTransportSocketMatches())
	}
	if got := http.GetMetadata().GetFilterMetadata()["lucid"].GetFields()["tls"].GetStructValue().GetFields()["mode"].GetStringValue(); got != "DISABLE" {
		t.Errorf("lucid.tls.mode %q", got)
	}
	db := findCluster(res, "outbound|5432||web.default.svc.cluster.local")
	var up tlspb.UpstreamTlsContext
	if err := db.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	if up.GetSni() != "db.example.com" || up.GetCommonTlsContext().GetValidationContext().GetTrustedCa().GetFilename() != "/etc/ca.pem" {
		t.Errorf("SIMPLE: %v", &up)
	}
}
