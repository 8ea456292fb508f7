package analyze

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(t *testing.T, dir string) []Message {
	t.Helper()
	files, diags := config.ReadDir(dir)
	objs, d := config.ParseFilesWith(files, config.Analysis)
	return Run(objs, append(diags, d...), Options{Offline: true}).Messages
}

func render(ms []Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.String() + "\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (-update rewrites it)\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"all", filepath.Join("testdata", "all")},
		{"bookinfo-lite", filepath.Join("..", "..", "..", "examples", "bookinfo-lite")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, tc.name, render(run(t, tc.dir)))
		})
	}
}

// TestEveryCode checks each analyzer fires on testdata/all, with its level.
func TestEveryCode(t *testing.T) {
	ms := run(t, filepath.Join("testdata", "all"))
	want := map[string]Level{
		"IST0101": Error, "IST0106": Error, "IST0109": Error, "IST0118": Info, "IST0130": Warning, "IST0132": Warning,
		"IST0134": Warning, "IST0140": Warning, "IST0145": Error, "IST0173": Error, "IST0174": Warning,
		"LUC0001": Warning, "LUC0002": Warning, "LUC0004": Warning, "LUC0005": Error, "LUC0008": Info,
	}
	got := map[string]Level{}
	for _, m := range ms {
		got[m.Code] = m.Level
		if m.File == "" || m.Line == 0 || m.Kind == "" {
			t.Errorf("%s has no file, line or object: %+v", m.Code, m)
		}
	}
	for code, lvl := range want {
		if got[code] != lvl {
			t.Errorf("%s: level %q, want %q", code, got[code], lvl)
		}
	}
	if !HasErrors(ms) {
		t.Error("HasErrors = false")
	}
}

// TestIST0173NamesTheMissingLabel is the bookinfo-lite incident: the message says which
// labels the subset wants and what the workloads have.
func TestIST0173NamesTheMissingLabel(t *testing.T) {
	ms := run(t, filepath.Join("..", "..", "..", "examples", "bookinfo-lite"))
	var m *Message
	for i := range ms {
		if ms[i].Code == "IST0173" {
			m = &ms[i]
		}
	}
	if m == nil {
		t.Fatal("no IST0173 for subset v3")
	}
	for _, s := range []string{"The Subset v3 defined in the DestinationRule does not select any pods",
		"WorkloadEntry reviews-v3 has app=reviews but no version label", "wants version=v3", "add `version: v3` to the labels of WorkloadEntry reviews-v3"} {
		if !strings.Contains(m.String(), s) {
			t.Errorf("IST0173 message lacks %q:\n%s", s, m)
		}
	}
	if m.File != "reviews.yaml" || m.Field != "spec.subsets[2].labels" {
		t.Errorf("location %s %s, want reviews.yaml spec.subsets[2].labels", m.File, m.Field)
	}
}

// TestGatewayReferences: a gateway that does not exist is IST0101 at the VirtualService's
// spec.gateways entry, as written; hosts the named gateway does not serve are IST0132.
func TestGatewayReferences(t *testing.T) {
	var got []string
	for _, m := range run(t, filepath.Join("testdata", "all")) {
		if m.File == "gateway.yaml" && (m.Code == "IST0101" || m.Code == "IST0132") {
			got = append(got, m.Code+" "+m.Origin()+" "+m.Field+": "+m.Text)
		}
	}
	want := []string{
		`IST0101 VirtualService default/storefront spec.gateways[1]: Referenced gateway not found: "ingres"`,
		"IST0132 VirtualService default/storefront spec.gateways[1]: one or more host [shop.example.com] defined in VirtualService default/storefront not found in Gateway default/ingres.",
		"IST0132 VirtualService default/wrong-host spec.gateways[0]: one or more host [a.team.example.com] defined in VirtualService default/wrong-host not found in Gateway istio-system/ingress.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGatewayChecks: a Gateway selecting no workload is IST0101 with Istio's text; two
// Gateways for the same gateway repeating a host on port 80 are IST0145 on both, and the
// server the merge drops (HTTP after TCP) is LUC0005, not a second LUC0000.
func TestGatewayChecks(t *testing.T) {
	var got []string
	for _, m := range run(t, filepath.Join("testdata", "all")) {
		if m.Kind == "Gateway" {
			got = append(got, m.Code+" "+m.Origin()+" "+m.Field+": "+m.Text)
		}
	}
	want := []string{
		`IST0101 Gateway istio-system/egress spec.selector.istio: Referenced selector not found: "istio=egressgateway"`,
		"IST0145 Gateway istio-system/ingress spec.servers: Conflict with gateways istio-system/shop-copy (workload selector istio=ingressgateway, port 80, hosts shop.example.com,team/*.team.example.com).",
		"IST0145 Gateway istio-system/shop-copy spec.servers: Conflict with gateways istio-system/ingress (workload selector istio=ingressgateway, port 80, hosts shop.example.com).",
		"LUC0005 Gateway istio-system/ingress spec.servers[0]: Gateway server spec.servers[0] (port 80, HTTP) is not served: port 80 already serves TCP (Gateway istio-system/database spec.servers[0]); only plaintext HTTP servers share a plaintext port",
		"LUC0005 Gateway istio-system/shop-copy spec.servers[0]: Gateway server spec.servers[0] (port 80, HTTP) is not served: port 80 already serves TCP (Gateway istio-system/database spec.servers[0]); only plaintext HTTP servers share a plaintext port",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
