package contract

import (
	"encoding/json"
	"net/netip"
	"testing"
)

func TestShortType(t *testing.T) {
	for url, want := range map[string]string{
		ListenerTypeURL: LDS, RouteTypeURL: RDS, ClusterTypeURL: CDS, EndpointTypeURL: EDS, SecretTypeURL: SDS,
		"type.googleapis.com/envoy.service.runtime.v3.Runtime": "Runtime",
		"noDots": "noDots",
	} {
		if got := ShortType(url); got != want {
			t.Errorf("ShortType(%q) = %q, want %q", url, got, want)
		}
	}
}

// TestProbeFailureRoundTrip sends a report the way it travels: Fields, then JSON (what a
// google.protobuf.Struct holds: numbers become float64), then ParseProbeFailure.
func TestProbeFailureRoundTrip(t *testing.T) {
	in := ProbeFailure{Pod: "p", Namespace: "ns", Container: "app", Probe: "livez", Target: "http://127.0.0.1:8080/healthz",
		Reason: "status", Cause: "HTTP 500", Failures: 3}
	b, err := json.Marshal(in.Fields())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["node"] = "sidecar~10.0.0.1~p.ns~ns.svc.cluster.local"
	got, err := ParseProbeFailure(m)
	if err != nil {
		t.Fatal(err)
	}
	in.Node = m["node"].(string)
	if got != in {
		t.Fatalf("got %+v, want %+v", got, in)
	}
	for _, bad := range []map[string]any{
		{"cause": "x"},     // no container
		{"container": "c"}, // no cause
		{"kind": "other", "container": "c", "cause": "x"}, // another kind of event
	} {
		if _, err := ParseProbeFailure(bad); err == nil {
			t.Errorf("ParseProbeFailure(%v) accepted", bad)
		}
	}
}

func TestAdminAddress(t *testing.T) {
	for ip, want := range map[string]string{
		"127.0.10.1": "127.255.10.1", "127.0.0.1": "127.255.0.1", "10.1.2.3": "127.0.0.1", "::1": "127.0.0.1",
	} {
		if got := AdminAddress(netip.MustParseAddr(ip)).String(); got != want {
			t.Errorf("AdminAddress(%s) = %s, want %s", ip, got, want)
		}
	}
}
