package analyze

import (
	"slices"
	"strings"
	"testing"
)

// The Sidecar analyzers on one namespace with two selector-less Sidecars (IST0111), two
// Sidecars selecting one workload (IST0110), a selector matching nobody (IST0101) and
// egress hosts importing nothing (LUC0014); "~/*" and the root default's "./*" are fine.
func TestSidecarAnalyzers(t *testing.T) {
	var got []string
	for _, m := range run(t, "testdata/sidecar") {
		if m.Kind == "Sidecar" {
			got = append(got, m.Code+" "+m.Kind+" "+m.Name+"."+m.Namespace+" "+m.Field+": "+m.Text)
		}
	}
	want := []string{
		`IST0111 Sidecar all.default : The Sidecars [all also-all] in namespace "default" have no workload selector, which can lead to undefined behavior.`,
		`IST0111 Sidecar also-all.default : The Sidecars [all also-all] in namespace "default" have no workload selector, which can lead to undefined behavior.`,
		`IST0110 Sidecar reviews.default metadata.name: The Sidecars [reviews reviews-v1] in namespace "default" select the same workload pod "reviews-v1", which can lead to undefined behavior.`,
		`IST0110 Sidecar reviews-v1.default metadata.name: The Sidecars [reviews reviews-v1] in namespace "default" select the same workload pod "reviews-v1", which can lead to undefined behavior.`,
		`IST0101 Sidecar nobody.default spec.workloadSelector.labels.app: Referenced selector not found: "app=nobody"`,
		`LUC0014 Sidecar all.default spec.egress[0].hosts[1]: egress host "istio-system/*" matches no service or VirtualService visible in namespace default`,
		`LUC0014 Sidecar also-all.default spec.egress[0].hosts[1]: egress host "shared/*" matches no service or VirtualService visible in namespace default`,
		`LUC0014 Sidecar also-all.default spec.egress[0].hosts[2]: egress host "./ratings.default.svc.cluster.local" matches no service or VirtualService visible in namespace default`,
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Sidecar messages:\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
