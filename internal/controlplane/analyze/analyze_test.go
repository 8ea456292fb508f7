package analyze

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

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
	testutil.Golden(t, filepath.Join("testdata", name+".golden"), []byte(got))
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

func analyzeDoc(t *testing.T, doc string) Result {
	t.Helper()
	objs, diags := config.ParseWith("t.yaml", []byte(doc), config.Analysis)
	return Run(objs, diags, Options{Offline: true})
}

func findings(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Code+" "+m.Origin())
	}
	return out
}

// TestKubernetesObjectsAreInputs: Services are the registry and Pods the workloads; none of
// them is an error.
func TestKubernetesObjectsAreInputs(t *testing.T) {
	res := analyzeDoc(t, `apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-v1, labels: {app: ratings, version: v1}}
spec: {containers: [{name: ratings, image: ratings}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http: [{route: [{destination: {host: ratings, subset: v1}}]}]
`)
	got := strings.Join(findings(res.Messages), "\n")
	if got != "IST0173 DestinationRule default/ratings" {
		t.Errorf("findings:\n%s\nwant only IST0173 for subset v2", got)
	}
	if res.DefaultIngress != nil {
		t.Errorf("default ingress announced without a Gateway: %v", res.DefaultIngress)
	}
}

// TestInvalidObjectStillAnalysed: a VirtualService that fails validation is IST0106 and its
// routes are still checked (IST0101), as Istio's analyzers check them.
func TestInvalidObjectStillAnalysed(t *testing.T) {
	res := analyzeDoc(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: nowhere}}]
    timeout: -1s
`)
	got := findings(res.Messages)
	for _, want := range []string{"IST0106 VirtualService default/bad", "IST0101 VirtualService default/bad"} {
		if !slices.Contains(got, want) {
			t.Errorf("%q not in %q", want, got)
		}
	}
}

// TestDefaultIngressAssumed: offline, a Gateway for istio=ingressgateway finds Istio's
// default gateway (no IST0101), whose Service lacks port 8080 (IST0162), and the run says
// so; a WorkloadEntry gateway replaces it.
func TestDefaultIngressAssumed(t *testing.T) {
	gw := `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
`
	res := analyzeDoc(t, gw)
	if got := strings.Join(findings(res.Messages), "\n"); got != "IST0162 Gateway default/web" || res.DefaultIngress == nil {
		t.Errorf("findings %q, default %v", got, res.DefaultIngress)
	}
	res = analyzeDoc(t, gw+`---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingress, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.0.1, labels: {istio: ingressgateway}}
`)
	if len(res.Messages) != 0 || res.DefaultIngress != nil {
		t.Errorf("with a WorkloadEntry gateway: %q, default %v", findings(res.Messages), res.DefaultIngress)
	}
	objs, diags := config.ParseWith("t.yaml", []byte(gw), config.Analysis)
	if got := findings(Run(objs, diags, Options{}).Messages); !slices.Contains(got, "IST0101 Gateway default/web") {
		t.Errorf("online (no default gateway): %q, want IST0101 selector not found", got)
	}
}

// TestMessageJSON: istioctl's keys first, Lucid's after, and back.
func TestMessageJSON(t *testing.T) {
	m := Message{Code: "IST0101", Level: Error, Text: `Referenced host not found: "x"`, Kind: "VirtualService", Name: "r",
		Namespace: "default", File: "r.yaml", Line: 12, Field: "spec.http[0].route[0].destination.host", Fix: "f"}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"code":"IST0101","documentationUrl":"https://istio.io/latest/docs/reference/config/analysis/ist0101/?ref=istioctl-analyze",` +
		`"level":"Error","message":"Referenced host not found: \"x\"","origin":"VirtualService default/r","reference":"r.yaml:12",` +
		`"kind":"VirtualService","name":"r","namespace":"default","file":"r.yaml","line":12,"field":"spec.http[0].route[0].destination.host","fix":"f"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back Message
	if err := json.Unmarshal(b, &back); err != nil || back != m {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// TestFieldLine: a message points at its field's line, not the object's.
func TestFieldLine(t *testing.T) {
	res := analyzeDoc(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [r.example.com]
  http:
  - route:
    - destination: {host: r.example.com}
    - destination:
        host: nowhere
`)
	var lines []string
	for _, m := range res.Messages {
		if m.Code == "IST0101" {
			lines = append(lines, m.Reference()+" "+m.Field)
		}
	}
	want := []string{"t.yaml:8 spec.http[0].route[0].destination.host", "t.yaml:10 spec.http[0].route[1].destination.host"}
	if !slices.Equal(lines, want) {
		t.Errorf("IST0101 at %q, want %q", lines, want)
	}
}

// TestOnlineGatewayCredentials: what the running control plane analyses on Kubernetes
// (`lucid analyze --online`): its registry's pods, and one Secret-kind object per
// credential it serves (source/kube). A credentialName it has no Secret for is IST0101,
// one it serves is not reported.
func TestOnlineGatewayCredentials(t *testing.T) {
	objs, diags := config.Parse("", []byte(`apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: gwns}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: served-cert}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: missing-cert}
`))
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	leaf := testutil.Issue(t, testutil.CA(t, "analyze CA"), false, "a.example.com")
	cred := &model.Credential{Namespace: "gwns", Name: "served-cert", Cert: leaf.CertPEM, Key: leaf.KeyPEM}
	objs = append(objs,
		&config.Object{Kind: model.KindPod, Namespace: "gwns", Name: "ingress-0", Labels: map[string]string{"istio": "ingressgateway"},
			Spec: &networkingv1alpha3.WorkloadEntry{Address: "10.0.0.1", Labels: map[string]string{"istio": "ingressgateway"}}},
		&config.Object{Kind: config.KindSecret, APIVersion: "v1", Namespace: "gwns", Name: "served-cert", Kube: cred.Secret()})
	var got []string
	for _, m := range Analyze(objs, nil, nil) {
		if m.Kind == "Gateway" && strings.HasSuffix(m.Field, "credentialName") {
			got = append(got, m.Code+" "+m.Field+": "+m.Text)
		}
	}
	want := []string{`IST0101 spec.servers[1].tls.credentialName: Referenced credentialName not found: "missing-cert"`}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLocalGatewayCredentials: `lucid analyze DIR` in local mode: a credentialName of a
// Gateway a router WorkloadEntry serves must be DIR/credentials/<name>/ with a certificate
// and key; a missing one is IST0101.
func TestLocalGatewayCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "credentials", "present-cert"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, "credentials", "present-cert", f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	objs, diags := config.ParseWith("gateway.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingress, namespace: istio-system, annotations: {lucid.dev/proxy: router}}
spec: {address: 127.0.0.1, labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: present-cert}
  - port: {number: 8443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: missing-cert}
`), config.Analysis)
	var got []string
	for _, m := range Run(objs, diags, Options{Offline: true, ConfigDir: dir}).Messages {
		if strings.HasSuffix(m.Field, "credentialName") {
			got = append(got, m.Code+" "+m.Field+": "+m.Text+" | "+m.Detail)
		}
	}
	want := []string{`IST0101 spec.servers[1].tls.credentialName: Referenced credentialName not found: "missing-cert" | local mode reads the credential from ` +
		filepath.Join(dir, "credentials", "missing-cert") + `: it holds no tls.crt and tls.key (or cert and key), so the gateway does not serve this server`}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
