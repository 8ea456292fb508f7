package analyze

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestMTLSConflicts: LUC0015 names a DestinationRule that disables TLS towards a STRICT
// workload with a sidecar, and not one towards a workload without a sidecar.
func TestMTLSConflicts(t *testing.T) {
	var got []string
	for _, m := range run(t, filepath.Join("testdata", "mtls")) {
		if m.Code == "LUC0015" {
			got = append(got, m.String())
		}
	}
	want := "Error [LUC0015] (DestinationRule default/web mtls.yaml:25) DestinationRule web sets tls.mode DISABLE for web.default.svc.cluster.local port 8080, but workload web requires mutual TLS there (PeerAuthentication istio-system/default is STRICT)"
	if len(got) != 1 || !strings.HasPrefix(got[0], want) || !strings.Contains(got[0], "fix: remove tls.mode DISABLE") {
		t.Fatalf("LUC0015 messages:\n%s\nwant one starting with\n%s", strings.Join(got, "\n"), want)
	}
}

// TestMTLSSANs: LUC0016 names a DestinationRule's subjectAltNames that no workload behind
// its host, port or subset runs as (a typo'd service account, a subset whose workloads run
// as another), with the file and line, who runs as what, and the fix; names a workload
// does run as, MUTUAL naming one, and workloads without a sidecar give none.
func TestMTLSSANs(t *testing.T) {
	var got []string
	for _, m := range run(t, filepath.Join("testdata", "mtlssans")) {
		if m.Code == "LUC0016" {
			got = append(got, m.String())
		}
	}
	want := []string{
		"Warning [LUC0016] (DestinationRule default/api sans.yaml:29) DestinationRule api's tls.subjectAltNames (spiffe://cluster.local/ns/default/sa/api) match no workload of api.default.svc.cluster.local: every connection will fail with 503 UF (CERTIFICATE_VERIFY_FAILED)",
		"Warning [LUC0016] (DestinationRule default/api sans.yaml:39) DestinationRule api's tls.subjectAltNames (spiffe://cluster.local/ns/default/sa/api-sa) match no workload of subset v2 of api.default.svc.cluster.local: every connection will fail with 503 UF (CERTIFICATE_VERIFY_FAILED)",
	}
	if len(got) != len(want) {
		t.Fatalf("LUC0016 messages:\n%s\nwant %d:\n%s", strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("message %d:\n%s\nwant it to start with\n%s", i, got[i], w)
		}
	}
	for _, w := range []string{"workload api-v1 runs as spiffe://cluster.local/ns/default/sa/api-sa", "fix: name the identities the workloads run as"} {
		if !strings.Contains(got[0], w) {
			t.Errorf("the first message lacks %q:\n%s", w, got[0])
		}
	}
	if !strings.Contains(got[1], "workload api-v2 runs as spiffe://cluster.local/ns/default/sa/api-v2-sa") || strings.Contains(got[1], "api-v1") {
		t.Errorf("the subset's message should name only v2's workload:\n%s", got[1])
	}
}
