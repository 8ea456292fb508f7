package stats_test

import (
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
)

// TestPrometheusNameAuthz: the refusals per policy become one Prometheus metric with the
// policy as a label, the policy name kept whole (brackets and dots included).
func TestPrometheusNameAuthz(t *testing.T) {
	name, label, value := stats.PrometheusName("rbac.policy.ns[foo]-policy[deny-admin.v2]-rule[0].denied")
	if name != "envoy_rbac_policy_denied" || label != "policy" || value != "ns[foo]-policy[deny-admin.v2]-rule[0]" {
		t.Errorf("got %s{%s=%q}", name, label, value)
	}
}
