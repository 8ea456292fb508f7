package cluster

import (
	"errors"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func TestNoHealthyExplanations(t *testing.T) {
	const (
		svc      = "outbound|9080||reviews.default.svc.cluster.local"
		host     = "reviews.default.svc.cluster.local"
		ratings  = "outbound|9080||ratings.default.svc.cluster.local"
		subsetV1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
	)
	subset := func(name, subset string, selector map[string]string, svcCluster string) *resource.Cluster {
		return &resource.Cluster{Name: name, Type: resource.EDS, ServiceName: name, Info: resource.ClusterInfo{
			ServiceHost: host, Subset: subset, Selector: selector, ServiceCluster: svcCluster}}
	}
	unhealthy := func(addr string, h resource.HealthStatus) resource.Endpoint {
		e := ep(addr)
		e.Health = h
		return e
	}
	tests := []struct {
		name    string
		cluster *resource.Cluster
		svcEps  []resource.Endpoint // endpoints of svc
		eps     []resource.Endpoint // endpoints of the cluster under test
		want    string
	}{
		{
			name:    "empty subset",
			cluster: subset(subsetV1, "v1", map[string]string{"version": "v1"}, svc),
			svcEps:  []resource.Endpoint{ep("127.0.0.1:9080", "app", "reviews", "version", "v2"), ep("127.0.0.2:9080", "app", "reviews")},
			want:    `subset "v1" of reviews.default.svc.cluster.local selects 0 of 2 endpoints (version=v1: 0 match; labels present: version=v2, (none))`,
		},
		{
			name:    "empty subset, several keys and repeated label sets",
			cluster: subset("outbound|9080|v3|reviews.default.svc.cluster.local", "v3", map[string]string{"version": "v3", "app": "reviews"}, svc),
			svcEps: []resource.Endpoint{ep("127.0.0.1:9080", "app", "reviews", "version", "v1"), ep("127.0.0.2:9080", "app", "reviews", "version", "v1"),
				ep("127.0.0.3:9080", "app", "reviews", "version", "v2"), ep("127.0.0.4:9080"), ep("127.0.0.5:9080")},
			want: `subset "v3" of reviews.default.svc.cluster.local selects 0 of 5 endpoints (app=reviews: 3 match; version=v3: 0 match; ` +
				`labels present: app=reviews,version=v1 ×2, app=reviews,version=v2, (none) ×2)`,
		},
		{
			name:    "empty subset of a service without endpoints",
			cluster: subset(subsetV1, "v1", map[string]string{"version": "v1"}, svc),
			want:    `subset "v1" of reviews.default.svc.cluster.local selects 0 of 0 endpoints: no workload of reviews.default.svc.cluster.local is known to the control plane`,
		},
		{
			name:    "empty subset, service cluster unknown",
			cluster: subset(subsetV1, "v1", map[string]string{"version": "v1"}, "outbound|9080||nope"),
			want:    `subset "v1" of reviews.default.svc.cluster.local has no endpoints (service cluster outbound|9080||nope is unknown)`,
		},
		{
			name:    "empty subset without metadata",
			cluster: &resource.Cluster{Name: subsetV1, Type: resource.EDS, Info: resource.ClusterInfo{Subset: "v1"}},
			want:    `subset "v1" of reviews.default.svc.cluster.local has no endpoints`,
		},
		{
			name:    "service without endpoints",
			cluster: &resource.Cluster{Name: ratings, Type: resource.EDS, Info: resource.ClusterInfo{ServiceHost: "ratings.default.svc.cluster.local"}},
			want:    `cluster outbound|9080||ratings.default.svc.cluster.local has no endpoints: no workload of ratings.default.svc.cluster.local is known to the control plane`,
		},
		{
			name:    "service host from the cluster name",
			cluster: &resource.Cluster{Name: ratings, Type: resource.EDS},
			want:    `cluster outbound|9080||ratings.default.svc.cluster.local has no endpoints: no workload of ratings.default.svc.cluster.local is known to the control plane`,
		},
		{
			name:    "generic",
			cluster: &resource.Cluster{Name: "X", Type: resource.Static},
			want:    `cluster X has no endpoints`,
		},
		{
			name:    "all unhealthy",
			cluster: &resource.Cluster{Name: "X", Type: resource.EDS},
			eps: []resource.Endpoint{unhealthy("127.0.0.1:1", resource.Unhealthy), unhealthy("127.0.0.2:1", resource.Draining),
				unhealthy("127.0.0.3:1", resource.Unhealthy)},
			want: `all 3 endpoints of cluster X are unhealthy (UNHEALTHY ×2, DRAINING ×1)`,
		},
		{
			name:    "only endpoint unhealthy",
			cluster: &resource.Cluster{Name: "X", Type: resource.EDS},
			eps:     []resource.Endpoint{unhealthy("127.0.0.1:1", resource.Timeout)},
			want:    `the only endpoint of cluster X is unhealthy (TIMEOUT ×1)`,
		},
		{
			name:    "weight zero",
			cluster: &resource.Cluster{Name: "X", Type: resource.EDS},
			eps:     []resource.Endpoint{unhealthy("127.0.0.1:1", resource.Unhealthy), {Address: ep("127.0.0.2:1").Address}},
			want:    `all 2 endpoints of cluster X are unusable (UNHEALTHY ×1, weight 0 ×1)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestManager(t)
			m.Update(
				map[string]*resource.Cluster{tt.cluster.Name: tt.cluster, svc: eds(svc, resource.LeastRequest)},
				map[string]*resource.Endpoints{svc: {Endpoints: tt.svcEps}, tt.cluster.Name: {Endpoints: tt.eps}},
			)
			c := m.Get(tt.cluster.Name)
			h, err := c.Pick(PickContext{})
			var nh *NoHealthyError
			if h != nil || !errors.As(err, &nh) {
				t.Fatalf("Pick = %v, %v; want *NoHealthyError", h, err)
			}
			if nh.Cluster != tt.cluster.Name {
				t.Errorf("Cluster = %q", nh.Cluster)
			}
			if err.Error() != tt.want {
				t.Errorf("explanation\n got %s\nwant %s", err.Error(), tt.want)
			}
			if got := c.Stats().UpstreamCxNoneHealthy.Load(); got != 1 {
				t.Errorf("upstream_cx_none_healthy = %d, want 1", got)
			}
		})
	}
}
