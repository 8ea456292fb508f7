package podevent

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestParseReport(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"node": "sidecar~127.0.99.30~jetty-1.inj~inj.svc.cluster.local", "container": "jetty",
			"probe": "readyz", "cause": "connect: connection refused", "target": "GET http://127.0.99.30:8080/ok.jsp", "reason": "refused", "failures": 3.0}
	}
	tests := []struct {
		name    string
		mod     func(m map[string]any)
		wantErr string
		want    string // message
	}{
		{name: "from node id", mod: func(map[string]any) {},
			want: "Readiness probe failed: connect: connection refused (Lucid sidecar, probing GET http://127.0.99.30:8080/ok.jsp for container jetty on the kubelet's behalf; reason refused)"},
		{name: "explicit pod wins", mod: func(m map[string]any) { m["pod"], m["namespace"], m["node"] = "p", "ns", "garbage" }},
		{name: "bad node", mod: func(m map[string]any) { m["node"] = "router~x" }, wantErr: "not a sidecar node id"},
		{name: "bad probe", mod: func(m map[string]any) { m["probe"] = "healthz" }, wantErr: `probe "healthz"`},
		{name: "no container", mod: func(m map[string]any) { delete(m, "container") }, wantErr: "no container"},
		{name: "no cause", mod: func(m map[string]any) { m["cause"] = "" }, wantErr: "no cause"},
		{name: "prestop", mod: func(m map[string]any) { m["probe"] = "prestopz"; delete(m, "reason") },
			want: "PreStop hook failed: connect: connection refused (Lucid sidecar, probing GET http://127.0.99.30:8080/ok.jsp for container jetty on the kubelet's behalf)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			tt.mod(m)
			r, err := ParseReport(m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Pod == "" || r.Namespace == "" || r.Failures == 0 && m["failures"] != nil {
				t.Fatalf("report %+v", r)
			}
			if tt.want != "" && r.Message() != tt.want {
				t.Fatalf("message\n got %q\nwant %q", r.Message(), tt.want)
			}
		})
	}
}

func TestCheckPeer(t *testing.T) {
	pod := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"podIPs": []any{map[string]any{"ip": "127.0.99.30"}}}}}
	noIP := &unstructured.Unstructured{Object: map[string]any{}}
	if err := checkPeer(pod, netip.MustParseAddr("127.0.99.30")); err != nil {
		t.Errorf("own pod refused: %v", err)
	}
	if err := checkPeer(pod, netip.MustParseAddr("127.0.99.31")); err == nil {
		t.Error("report from another address accepted")
	}
	if err := checkPeer(noIP, netip.MustParseAddr("127.0.99.31")); err != nil {
		t.Errorf("pod without IPs: %v", err)
	}
}
