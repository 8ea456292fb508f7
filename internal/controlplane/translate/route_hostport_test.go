package translate

import (
	"slices"
	"strings"
	"testing"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// A sidecar's outbound route configurations ignore the Host's port, as Istio's do
// (ignore_port_in_host_matching): every domain is port-free, so "reviews:9080", and a
// Host naming another port, select reviews as "reviews" does. A proxyless gRPC client,
// which matches its target "host:port" and has no such option, keeps the port forms.
func TestSidecarRoutesIgnorePortInHostMatching(t *testing.T) {
	var c Cache
	c.Update(buildMesh(t, baseObjects(t)), model.Full)
	id := "sidecar~127.0.10.40~productpage-v1.default~default.svc.cluster.local"
	side := c.Parts(proxy(t, id)).Resources()
	var reviews *routepb.VirtualHost
	for _, m := range side.Routes {
		rc := m.(*routepb.RouteConfiguration)
		if !rc.GetIgnorePortInHostMatching() {
			t.Errorf("route configuration %q does not set ignore_port_in_host_matching", rc.GetName())
		}
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if strings.Contains(d, ":") {
					t.Errorf("route configuration %q, virtual host %q: domain %q carries a port", rc.GetName(), vh.GetName(), d)
				}
			}
			if vh.GetName() == "reviews.default.svc.cluster.local:9080" {
				reviews = vh
			}
		}
	}
	if reviews == nil || !slices.Contains(reviews.GetDomains(), "reviews") || !slices.Contains(reviews.GetDomains(), "reviews.default.svc.cluster.local") {
		t.Fatalf("reviews' virtual host: %v", reviews)
	}

	p := proxy(t, id)
	p.GRPC = true
	for _, m := range c.Parts(p).Resources().Routes {
		rc := m.(*routepb.RouteConfiguration)
		if rc.GetName() != "outbound|9080||reviews.default.svc.cluster.local" {
			continue
		}
		if d := rc.GetVirtualHosts()[0].GetDomains(); !slices.Contains(d, "reviews:9080") || !slices.Contains(d, "reviews.default.svc.cluster.local:9080") {
			t.Errorf("gRPC's reviews domains %v lack the host:port targets", d)
		}
		return
	}
	t.Error("the gRPC client has no route configuration for reviews")
}
