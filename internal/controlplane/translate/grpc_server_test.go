package translate

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlspb "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// grpcResources are the resources of a proxyless gRPC proxy at ip in mtlsMeshYAML+extra.
func grpcResources(t *testing.T, extra string, mtls bool, ip, name string) *Resources {
	t.Helper()
	m, _ := model.Build(loadObjects(t, "mesh.yaml", []byte(mtlsMeshYAML+extra)), nil)
	m.SetMTLS(mtls)
	var c Cache
	c.Update(m, model.Full)
	return c.Parts(&model.Proxy{Type: "sidecar", IP: netip.MustParseAddr(ip), Name: name, Namespace: "default", GRPC: true}).Resources()
}

// A proxyless gRPC server (the web workload) gets, for its HTTP port 8080 and for its
// own address and the wildcard ones, the listener gRPC asks for by Istio's server
// template, with that address, one HCM chain whose inline route accepts every RPC, and
// under STRICT a mutual TLS context from the certificate provider "default"; its TCP port
// gets none (gRPC serves HTTP/2 only).
func TestProxylessGRPCServerListeners(t *testing.T) {
	for _, mtls := range []bool{true, false} {
		res := grpcResources(t, "", mtls, "127.0.163.60", "web")
		var names []string
		for _, m := range res.Listeners {
			l := m.(*listenerpb.Listener)
			if !strings.HasPrefix(l.GetName(), GRPCServerListenerPrefix) {
				continue
			}
			names = append(names, l.GetName())
			sa := l.GetAddress().GetSocketAddress()
			if want := GRPCServerListenerPrefix + net.JoinHostPort(sa.GetAddress(), fmt.Sprint(sa.GetPortValue())); l.GetName() != want {
				t.Errorf("listener %s has address %s:%d (gRPC requires the one it listens on)", l.GetName(), sa.GetAddress(), sa.GetPortValue())
			}
			if len(l.GetFilterChains()) != 1 || l.GetApiListener() != nil {
				t.Fatalf("listener %s: %d chains, want one", l.GetName(), len(l.GetFilterChains()))
			}
			fc := l.GetFilterChains()[0]
			var hcm hcmpb.HttpConnectionManager
			if err := fc.GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
				t.Fatal(err)
			}
			vh := hcm.GetRouteConfig().GetVirtualHosts()
			if len(vh) != 1 || vh[0].GetRoutes()[0].GetNonForwardingAction() == nil || hcm.GetHttpFilters()[0].GetName() != RouterFilter {
				t.Errorf("listener %s: HCM %v, want an inline route with a non-forwarding action and the router", l.GetName(), &hcm)
			}
			ts := fc.GetTransportSocket()
			if !mtls {
				if ts != nil {
					t.Errorf("without workload certificates listener %s has TLS", l.GetName())
				}
				continue
			}
			var d tlspb.DownstreamTlsContext
			if ts == nil || ts.GetTypedConfig().UnmarshalTo(&d) != nil {
				t.Fatalf("STRICT listener %s has no TLS context", l.GetName())
			}
			if !d.GetRequireClientCertificate().GetValue() || d.GetCommonTlsContext().GetTlsCertificateProviderInstance().GetInstanceName() != GRPCCertProvider ||
				d.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext().GetCaCertificateProviderInstance().GetCertificateName() != SDSRootCA {
				t.Errorf("listener %s: TLS context %v", l.GetName(), &d)
			}
		}
		slices.Sort(names)
		want := []string{GRPCServerListenerPrefix + "0.0.0.0:8080", GRPCServerListenerPrefix + "127.0.163.60:8080", GRPCServerListenerPrefix + "[::]:8080"}
		if !slices.Equal(names, want) {
			t.Errorf("mtls %v: server listeners %v, want %v", mtls, names, want)
		}
	}
}
