package translate

import (
	"slices"
	"testing"

	clusterpb "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// apiYAML is a service whose one endpoint has a sidecar (auto mTLS applies to all of it).
const apiYAML = `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api}
spec:
  hosts: [api.default.svc.cluster.local]
  ports: [{number: 9090, name: grpc, protocol: GRPC}]
  resolution: STATIC
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api}
spec: {address: 127.0.163.62, labels: {app: api}, serviceAccount: api-sa}
`

// grpcClientTLS is the cluster's TLS context as a gRPC client gets it (nil: plaintext),
// after checking the cluster carries nothing gRPC refuses.
func grpcClientTLS(t *testing.T, res *Resources, name string) *tlspb.UpstreamTlsContext {
	t.Helper()
	c := findCluster(res, name)
	if c == nil {
		t.Fatalf("no cluster %s", name)
	}
	if len(c.GetTransportSocketMatches()) != 0 {
		t.Fatalf("cluster %s has transport_socket_matches, which gRPC refuses", name)
	}
	if c.GetTransportSocket() == nil {
		return nil
	}
	var up tlspb.UpstreamTlsContext
	if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&up); err != nil {
		t.Fatal(err)
	}
	common := up.GetCommonTlsContext()
	if len(common.GetTlsCertificateSdsSecretConfigs()) != 0 || common.GetTlsCertificateProviderInstance().GetInstanceName() != GRPCCertProvider ||
		common.GetCombinedValidationContext().GetDefaultValidationContext().GetCaCertificateProviderInstance().GetInstanceName() != GRPCCertProvider {
		t.Errorf("cluster %s: TLS context %v, want certificates and roots from provider %q", name, &up, GRPCCertProvider)
	}
	return &up
}

func sans(up *tlspb.UpstreamTlsContext) []string {
	var out []string
	for _, m := range up.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetMatchSubjectAltNames() { //nolint:staticcheck // gRPC's field
		out = append(out, m.GetExact())
	}
	return out
}

// A gRPC client's clusters: auto mTLS, in the certificate provider form with the
// server's identities, when every endpoint has a sidecar (api); plaintext when some do
// not (web: web has one, bare none), where a sidecar would choose per endpoint and gRPC
// cannot; a DestinationRule's ISTIO_MUTUAL always; and nothing without certificates.
func TestProxylessGRPCClusterTLS(t *testing.T) {
	res := grpcResources(t, apiYAML, true, "127.0.163.70", "client")
	if up := grpcClientTLS(t, res, "outbound|9090||api.default.svc.cluster.local"); up == nil || !slices.Equal(sans(up), []string{"spiffe://cluster.local/ns/default/sa/api-sa"}) {
		t.Errorf("api (all endpoints with a sidecar): TLS %v, want mutual TLS verifying api-sa", up)
	}
	if up := grpcClientTLS(t, res, "outbound|8080||web.default.svc.cluster.local"); up != nil {
		t.Errorf("web (one endpoint without a sidecar): TLS %v, want plaintext", up)
	}

	const dr = `
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web.default.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`
	res = grpcResources(t, apiYAML+dr, true, "127.0.163.70", "client")
	if up := grpcClientTLS(t, res, "outbound|8080||web.default.svc.cluster.local"); up == nil || len(sans(up)) == 0 {
		t.Errorf("web with ISTIO_MUTUAL: TLS %v, want mutual TLS with the service's identities", up)
	}

	res = grpcResources(t, apiYAML, false, "127.0.163.70", "client")
	for _, name := range []string{"outbound|9090||api.default.svc.cluster.local", "outbound|8080||web.default.svc.cluster.local"} {
		if up := grpcClientTLS(t, res, name); up != nil {
			t.Errorf("%s without workload certificates: TLS %v", name, up)
		}
	}
}

// The shared cluster a sidecar gets keeps its SDS transport sockets.
func TestGRPCClusterTLSLeavesSharedClusters(t *testing.T) {
	c := &clusterpb.Cluster{Name: "a", TransportSocketMatches: []*clusterpb.Cluster_TransportSocketMatch{{Name: "tlsMode-istio"}}}
	got := grpcClusterTLS(c, func(string) bool { return true })
	if got == c || len(c.GetTransportSocketMatches()) != 1 || got.GetTransportSocket() != nil {
		t.Errorf("got %v from %v", got, c)
	}
}
