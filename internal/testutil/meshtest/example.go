package meshtest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/local/up"
)

// exampleAddr matches the loopback addresses the examples use: workloads in 127.0.10.0/24,
// apps in 127.0.20.0/24, the gateway on 127.0.0.1.
var exampleAddr = regexp.MustCompile(`127\.0\.(0|10|20)\.(\d{1,3})\b`)

// Example reads the YAML files of examples/<name> and moves the example's loopback
// addresses into 127.0.n.0/24, so that a test runs the example as users do without
// colliding with `lucid up` or with another package's tests: a sidecar's 127.0.10.k
// becomes 127.0.n.(10+k), an app's 127.0.20.k becomes 127.0.n.(20+k), and 127.0.0.1 (the
// gateway) becomes 127.0.n.2. It returns the files (name → YAML) and the workloads their
// WorkloadEntries describe, as `lucid up` plans them (each app is an echo app on the
// ports of the services selecting it, answering with the version its command line
// gives; with Options.DemoApps the example's own demo apps run instead), and the
// certificates `lucid up` generates for its Gateways, among the files. Files named in
// skip are left out.
func Example(t testing.TB, name string, n byte, skip ...string) (map[string]string, []Workload) {
	t.Helper()
	src, err := exampleDir(name)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") || slices.Contains(skip, e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		body := RewriteExampleAddresses(string(b), n)
		files[e.Name()] = body
		if err := root.WriteFile(e.Name(), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	objs, diags := config.LoadDir(dir)
	for _, d := range diags {
		t.Fatalf("examples/%s: %s", name, d)
	}
	gateway := fmt.Sprintf("127.0.%d.2", n)
	if _, err := up.EnsureCertificates(dir, objs, []string{gateway}); err != nil {
		t.Fatalf("examples/%s: gateway certificates: %v", name, err)
	}
	if err := addGenerated(files, dir); err != nil {
		t.Fatalf("examples/%s: %v", name, err)
	}
	plan, err := up.NewPlan(objs, up.PlanOptions{Dir: dir, Executable: "lucid"})
	if err != nil {
		t.Fatalf("examples/%s: %v", name, err)
	}
	return files, planWorkloads(plan)
}

// RewriteExampleAddresses moves an example's loopback addresses into 127.0.n.0/24 (see
// Example).
func RewriteExampleAddresses(s string, n byte) string {
	return exampleAddr.ReplaceAllStringFunc(s, func(a string) string {
		m := exampleAddr.FindStringSubmatch(a)
		k, _ := strconv.Atoi(m[2])
		switch {
		case m[1] == "0" && k == 1:
			return fmt.Sprintf("127.0.%d.2", n)
		case m[1] == "10" && k < 10:
			return fmt.Sprintf("127.0.%d.%d", n, 10+k)
		case m[1] == "20" && k < 10:
			return fmt.Sprintf("127.0.%d.%d", n, 20+k)
		}
		return a
	})
}

// addGenerated adds the files generated in dir (certificates) to files, by their path
// relative to dir.
func addGenerated(files map[string]string, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := files[rel]; ok {
			return nil
		}
		b, err := os.ReadFile(p) //nolint:gosec // G122: the repository's own example directory, no attacker in the loop
		files[rel] = string(b)
		return err
	})
}

// planWorkloads turns lucid up's plan into test workloads.
func planWorkloads(p *up.Plan) []Workload {
	var out []Workload
	for _, w := range p.Workloads {
		tw := Workload{Name: w.Name, IP: w.Address, Labels: w.Labels, Namespace: w.Namespace, Router: w.Router}
		if w.HasApp {
			tw.AppIP = w.AppAddress
			tw.Version = appVersion(p, w.Name)
			tw.DemoApp = demoAppArgs(p, w.Name)
			for _, s := range p.Services {
				if s.Namespace != w.Namespace || !slices.Contains(s.Workloads, w.Name) {
					continue
				}
				for _, port := range s.Ports {
					if !slices.Contains(tw.Ports, int(port.Number)) {
						tw.Ports = append(tw.Ports, int(port.Number))
					}
				}
			}
		}
		out = append(out, tw)
	}
	return out
}

// demoAppArgs is the arguments of the workload's app command when it is `lucid
// demo-app`; nil for any other app.
func demoAppArgs(p *up.Plan, workload string) []string {
	for _, a := range p.Apps {
		if a.Name == workload+" app" && a.Path == "lucid" && len(a.Args) > 0 && a.Args[0] == "demo-app" {
			return a.Args[1:]
		}
	}
	return nil
}

// appVersion is the --version of the workload's app command (the example's demo apps),
// or its version label.
func appVersion(p *up.Plan, workload string) string {
	for _, a := range p.Apps {
		if a.Name != workload+" app" {
			continue
		}
		if i := slices.Index(a.Args, "--version"); i >= 0 && i+1 < len(a.Args) {
			return a.Args[i+1]
		}
	}
	for _, w := range p.Workloads {
		if w.Name == workload {
			return w.Labels["version"]
		}
	}
	return ""
}

// exampleDir finds examples/<name> from the module root (the directory with go.mod above
// the test's working directory).
func exampleDir(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "examples", name), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("meshtest: no go.mod above the working directory to find examples/%s", name)
		}
		dir = parent
	}
}
