package syncview

import (
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// A proxyless gRPC client's per-proxy view says why no diff is possible and, per type,
// what it holds: acknowledged, sent and not yet acknowledged, rejected with the reason,
// or nothing asked for.
func TestProxylessView(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := contract.ProxyStatus{
		ID: "sidecar~10.0.0.1~client.default~default.svc.cluster.local", Metadata: map[string]string{"GENERATOR": "grpc"},
		ConnectedAt: now.Add(-time.Hour),
		Types: map[string]*contract.TypeStatus{
			contract.LDS: {State: contract.StateSynced, AckedVersion: "v2-a", AckedAt: now.Add(-5 * time.Second)},
			contract.RDS: {State: contract.StateStale, SentVersion: "v2-b", SentAt: now.Add(-3 * time.Second), AckedVersion: "v1-b", AckedAt: now.Add(-time.Minute)},
			contract.CDS: {State: contract.StateError, NackedVersion: "v2-c", NackedAt: now.Add(-2 * time.Second), NackReason: "unexpected lbPolicy", AckedVersion: "v1-c", AckedAt: now.Add(-time.Minute)},
		},
	}
	if !IsProxyless(s) || IsProxyless(contract.ProxyStatus{}) {
		t.Fatal("IsProxyless does not go by GENERATOR grpc")
	}
	var b strings.Builder
	if err := Proxyless(&b, s, "client.default", now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"client.default is a proxyless gRPC client",
		"cannot be read back and diffed",
		"Listeners  SYNCED: version v2-a acknowledged 5s ago",
		"Routes     STALE: version v2-b sent 3s ago, not acknowledged yet (it holds version v1-b, acknowledged 60s ago)",
		"Clusters   ERROR: rejected version v2-c 2s ago (NACK): unexpected lbPolicy (it holds version v1-c",
		"Endpoints  NOT SENT",
		"client.default is not connected (last connected 60m ago)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
}
