package ads

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// consistent checks that every route configuration a listener takes from RDS and every
// endpoint assignment an EDS cluster needs is among the proxy's resources. A proxy given
// a listener without its routes, or a cluster without its endpoints, would wait for them
// forever; translate never produces that, so a failure here is a bug worth a log line, and
// the proxy keeps its last good configuration. Results are shared per combination of sets
// within a push.
func (s *Server) consistent(v map[string]view) error {
	var parts []string
	for _, c := range []struct {
		from, to, what, by string
	}{
		{contract.ListenerTypeURL, contract.RouteTypeURL, "route configuration", "listener"},
		{contract.ClusterTypeURL, contract.EndpointTypeURL, "cluster load assignment", "cluster"},
	} {
		key := fmt.Sprint(c.from, v[c.from], v[c.to])
		if r, ok := s.checks.Load(key); ok {
			if msg := r.(string); msg != "" {
				parts = append(parts, msg)
			}
			continue
		}
		var missing []string
		v[c.from].each(func(r *resource) {
			for _, ref := range r.refs {
				if v[c.to].get(ref) == nil && !slices.Contains(missing, ref) {
					missing = append(missing, ref)
				}
			}
		})
		slices.Sort(missing)
		var msgs []string
		for _, n := range missing {
			msgs = append(msgs, fmt.Sprintf("a %s references %s %q, which does not exist", c.by, c.what, n))
		}
		msg := strings.Join(msgs, "; ")
		s.checks.Store(key, msg)
		if msg != "" {
			parts = append(parts, msg)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(parts, "; "))
}
