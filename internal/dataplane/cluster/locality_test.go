package cluster

import (
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

func locEP(addr, loc string, prio uint32) resource.Endpoint {
	e := ep(addr)
	e.Locality, e.Priority = loc, prio
	return e
}

func TestRetryRemoteLocalities(t *testing.T) {
	m := newTestManager(t)
	tests := []struct {
		name  string
		eps   []resource.Endpoint
		tried []int // indexes into eps
		want  []int // acceptable picks
	}{
		{"next priority after the tried one",
			[]resource.Endpoint{locEP("10.0.0.1:80", "r/a/", 0), locEP("10.0.0.2:80", "r/a/", 0), locEP("10.0.0.3:80", "r/b/", 1)},
			[]int{0}, []int{2}},
		{"same priority, other locality first",
			[]resource.Endpoint{locEP("10.0.0.1:80", "r/a/", 0), locEP("10.0.0.2:80", "r/a/", 0), locEP("10.0.0.3:80", "r/b/", 0)},
			[]int{0}, []int{2}},
		{"everything remote tried: another host of the tried locality",
			[]resource.Endpoint{locEP("10.0.0.1:80", "r/a/", 0), locEP("10.0.0.2:80", "r/a/", 0), locEP("10.0.0.3:80", "r/b/", 1)},
			[]int{0, 2}, []int{1}},
		{"lowest untried priority wins",
			[]resource.Endpoint{locEP("10.0.0.1:80", "r/a/", 0), locEP("10.0.0.3:80", "r/c/", 2), locEP("10.0.0.2:80", "r/b/", 1)},
			[]int{0}, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := install(t, m, eds("loc", resource.RoundRobin), tc.eps...)
			var tried []*Host
			for _, i := range tc.tried {
				tried = append(tried, c.Hosts()[i])
			}
			for range 20 {
				h := pick(t, c, PickContext{RemoteLocalities: true, Tried: tried, Exclude: tried})
				ok := false
				for _, i := range tc.want {
					ok = ok || h.Same(c.Hosts()[i])
				}
				if !ok {
					t.Fatalf("picked %s (%s, priority %d)", h.Addr, h.Endpoint.Locality, h.Endpoint.Priority)
				}
			}
		})
	}
}
