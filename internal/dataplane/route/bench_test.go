package route

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// benchConfig looks like an Istio outbound route config for one port: 100 services, each
// with its five domain forms, and a few routes on one of them.
func benchConfig() *resource.RouteConfig {
	rc := &resource.RouteConfig{Name: "8080"}
	for i := range 100 {
		h := fmt.Sprintf("svc-%d", i)
		fq := h + ".default.svc.cluster.local"
		rc.VirtualHosts = append(rc.VirtualHosts, resource.VirtualHost{
			Name:    fq + ":8080",
			Domains: []string{fq, fq + ":8080", h, h + ":8080", h + ".default", h + ".default:8080", fmt.Sprintf("10.96.0.%d:8080", i)},
			Routes: []resource.Route{
				{Name: "admin", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/admin", CaseSensitive: true}},
				{Name: "jason", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/api", CaseSensitive: true,
					Headers: []resource.HeaderMatcher{{Name: "end-user", Value: resource.StringMatcher{Value: "bob"}}}}},
				{Name: "items", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/API/", CaseSensitive: false,
					Headers: []resource.HeaderMatcher{{Name: ":method", Value: resource.StringMatcher{Value: "GET"}}}}},
				{Name: "default", Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: "/", CaseSensitive: true}},
			},
		})
	}
	rc.VirtualHosts = append(rc.VirtualHosts, resource.VirtualHost{Name: "allow_any", Domains: []string{"*"}})
	return rc
}

func BenchmarkSelect(b *testing.B) {
	rc := benchConfig()
	tbl := Compile(rc)
	r := httptest.NewRequest("GET", "http://svc-40.default.svc.cluster.local:8080/api/v1/items?id=3", nil)
	r.Header.Set("end-user", "jason")
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Select(rc, r)
		}
	})
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tbl.Select(r)
		}
	})
}
