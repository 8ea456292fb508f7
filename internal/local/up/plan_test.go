package up

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// renderPlan writes a plan as the text a reviewer checks in the golden file.
func renderPlan(p *Plan) string {
	var b strings.Builder
	procs := slices.Concat([]Process{p.Discovery}, p.Sidecars, p.Apps, p.Gateways)
	for _, pr := range procs {
		fmt.Fprintf(&b, "[%s]\n  run:   %s %s\n", pr.Name, pr.Path, strings.Join(pr.Args, " "))
		for _, e := range pr.Env {
			fmt.Fprintf(&b, "  env:   %s\n", e)
		}
		if pr.Ready != "" {
			fmt.Fprintf(&b, "  ready: %s\n", pr.Ready)
		}
		if len(pr.Binds) > 0 {
			fmt.Fprintf(&b, "  binds: %s\n", strings.Join(pr.Binds, " "))
		}
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name), []byte(got))
}

func loadExample(t *testing.T) []*config.Object {
	t.Helper()
	objs, diags := config.LoadDir("../../../examples/bookinfo-lite")
	for _, d := range diags {
		t.Errorf("example diagnostic: %s", d)
	}
	return objs
}

func TestPlanBookinfoLite(t *testing.T) {
	p, err := NewPlan(loadExample(t), PlanOptions{Dir: "examples/bookinfo-lite", Executable: "/opt/lucid"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "bookinfo-lite.plan", renderPlan(p))

	// The facts the README's tour relies on, stated outright.
	if len(p.Sidecars) != 6 || len(p.Apps) != 5 || len(p.Gateways) != 1 {
		t.Errorf("%d sidecars, %d apps and %d gateways, want 6, 5 and 1 (curl is a client without app)", len(p.Sidecars), len(p.Apps), len(p.Gateways))
	}
	if g := p.Gateways; len(g) == 1 && !slices.Contains(g[0].Binds, "127.0.0.1:8080") || len(g) == 1 && !slices.Contains(g[0].Binds, "127.0.0.1:8443") {
		t.Errorf("gateway binds %v, want 127.0.0.1:8080 and :8443", g[0].Binds)
	}
	var client *Workload
	for i, w := range p.Workloads {
		if w.Name == "curl" {
			client = &p.Workloads[i]
		}
	}
	if client == nil || client.HasApp || client.Address != "127.0.10.9" {
		t.Errorf("client workload = %+v, want curl at 127.0.10.9 without app", client)
	}
	for _, svc := range p.Services {
		if svc.Host == "reviews.default.svc.cluster.local" && strings.Join(svc.Workloads, ",") != "reviews-v1,reviews-v2,reviews-v3" {
			t.Errorf("reviews selects %v, want reviews-v1..v3", svc.Workloads)
		}
	}

	var out bytes.Buffer
	printWelcome(NewOutput(&out, prefixWidth(p), false), p, nil)
	golden(t, "bookinfo-lite.welcome", out.String())
	for _, want := range []string{"curl -x http://127.0.10.9:15001 http://productpage:9080/", "curl http://127.0.0.1:8080/productpage"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("welcome does not show the tour's %q:\n%s", want, out.String())
		}
	}
}

func TestPlanMeshConfig(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, meshTemplate)
	if err := os.WriteFile(filepath.Join(dir, config.MeshConfigFile), []byte("outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, _ := config.LoadDir(dir)
	p, err := NewPlan(objs, PlanOptions{Dir: dir, Executable: "lucid"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "--mesh-config " + filepath.Join(dir, config.MeshConfigFile); !strings.Contains(strings.Join(p.Discovery.Args, " "), want) {
		t.Errorf("discovery args %q lack %q", p.Discovery.Args, want)
	}
}

func TestPlanErrors(t *testing.T) {
	const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: web}}
`
	we := func(name, addr, annotations string) string {
		return fmt.Sprintf("---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: %s\n  annotations: {%s}\nspec:\n  address: %s\n  labels: {app: web}\n", name, annotations, addr)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"no workloads", se, "no WorkloadEntry in "},
		{"not loopback", se + we("web", "10.0.0.1", ""), `web.yaml: WorkloadEntry default/web: spec.address "10.0.0.1": lucid up runs each workload on its own loopback address`},
		{"shared address", se + we("a", "127.0.77.2", "") + we("b", "127.0.77.2", ""), "spec.address 127.0.77.2 is also the address of WorkloadEntry default/a"},
		{"bad app address", se + we("web", "127.0.77.2", `lucid.dev/app-address: "10.1.1.1"`), `metadata.annotations[lucid.dev/app-address] "10.1.1.1": want a loopback IP`},
		{"bad command", se + we("web", "127.0.77.2", `lucid.dev/app: "sleep 'forever"`), "WorkloadEntry default/web: metadata.annotations[lucid.dev/app]: unterminated single quote"},
		{"empty command", se + we("web", "127.0.77.2", `lucid.dev/app: " "`), "metadata.annotations[lucid.dev/app] is empty"},
		{"unknown variable", se + we("web", "127.0.77.2", `lucid.dev/app: "run $LUCID_NOPE"`), "undefined variable $LUCID_NOPE"},
		{"gateway with app", se + we("gw", "127.0.77.3", `lucid.dev/proxy: router, lucid.dev/app: "sleep 1"`), "a gateway (lucid.dev/proxy: router) runs no app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			objs, diags := config.LoadDir(dir)
			for _, d := range diags {
				if d.Level == config.Error {
					t.Fatalf("test YAML rejected: %s", d)
				}
			}
			_, err := NewPlan(objs, PlanOptions{Dir: dir, Executable: "lucid"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewPlan error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
