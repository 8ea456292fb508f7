package up

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// lucid up turns the CA on beside the control plane and gives each sidecar its own
// token on fd 3 (never in argv), recorded for its WorkloadEntry's identity.
func TestEnableIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mesh")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, strings.Replace(meshTemplate, "  address: 127.0.87.3\n", "  address: 127.0.87.3\n  serviceAccount: client-sa\n", 1))
	objs, _ := config.LoadDir(dir)
	p, err := NewPlan(objs, PlanOptions{Dir: dir, Executable: "lucid", GRPCAddr: "127.0.163.20:15010"})
	if err != nil {
		t.Fatal(err)
	}
	if err := enableIdentity(p, objs, dir); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(filepath.Dir(dir), ".mesh.lucid")
	if want := "--ca-addr 127.0.163.20:15012 --state-dir " + state; !strings.Contains(strings.Join(p.Discovery.Args, " "), want) {
		t.Errorf("discovery args %q lack %q", p.Discovery.Args, want)
	}
	b, err := os.ReadFile(filepath.Join(state, "workload-tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ca.ParseLocalTokens(b)
	if err != nil {
		t.Fatal(err)
	}
	sas := map[string]string{}
	for _, r := range recs {
		sas[r.Workload] = r.ServiceAccount
	}
	if sas["default/client"] != "client-sa" || sas["default/web"] != "default" {
		t.Errorf("tokens file identities %v", sas)
	}
	for _, sc := range p.Sidecars {
		args := strings.Join(sc.Args, " ")
		if !strings.HasPrefix(string(sc.Secret), ca.LocalTokenPrefix) || strings.Contains(args, string(sc.Secret)) {
			t.Errorf("%s: token %q (args %q)", sc.Name, sc.Secret, args)
		}
		if !strings.Contains(args, "--ca-address 127.0.163.20:15012 --ca-root-cert "+filepath.Join(state, "root-cert.pem")+" --ca-token-fd 3") {
			t.Errorf("%s: args %q", sc.Name, args)
		}
	}
}

// The secret reaches the child on fd 3.
func TestSecretOnFD3(t *testing.T) {
	out := &testutil.Buffer{}
	c, err := Start(Process{Name: "reader", Path: "/bin/sh", Args: []string{"-c", "cat <&3"}, Secret: []byte("s3cret")}, NewOutput(out, 6, false), nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not exit")
	}
	if !strings.Contains(out.String(), "s3cret") {
		t.Fatalf("output %q", out.String())
	}
}

// A meshconfig.yaml trustDomain reaches every sidecar's --trust-domain: the CA issues in it,
// so the agents must ask for it (else they never become ready). Without one, nothing is added.
func TestEnableIdentityTrustDomain(t *testing.T) {
	for _, tc := range []struct{ meshConfig, want string }{
		{"", ""},
		{"trustDomain: cluster.local\n", ""},
		{"trustDomain: example.org\n", "--trust-domain example.org"},
	} {
		dir := filepath.Join(t.TempDir(), "mesh")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeConfig(t, dir, meshTemplate)
		if tc.meshConfig != "" {
			if err := os.WriteFile(filepath.Join(dir, config.MeshConfigFile), []byte(tc.meshConfig), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		objs, _ := config.LoadDir(dir)
		p, err := NewPlan(objs, PlanOptions{Dir: dir, Executable: "lucid", GRPCAddr: "127.0.163.20:15010"})
		if err != nil {
			t.Fatal(err)
		}
		if err := enableIdentity(p, objs, dir); err != nil {
			t.Fatal(err)
		}
		for _, sc := range p.Sidecars {
			args := strings.Join(sc.Args, " ")
			if has := strings.Contains(args, "--trust-domain"); (tc.want == "" && has) || (tc.want != "" && !strings.Contains(args, tc.want)) {
				t.Errorf("meshconfig %q: %s args %q, want %q", tc.meshConfig, sc.Name, args, tc.want)
			}
		}
	}
}
