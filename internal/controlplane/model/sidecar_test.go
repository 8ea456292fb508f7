package model

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// scopeRegistry: services in four namespaces, one of them private to its namespace, and a
// VirtualService in default routing reviews to a service in shared.
const scopeRegistry = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec: {hosts: [reviews.default.svc.cluster.local], resolution: STATIC, ports: [{number: 9080, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: default}
spec: {hosts: [ratings.default.svc.cluster.local], resolution: STATIC, ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: team}
spec: {hosts: [api.team.svc.cluster.local], resolution: STATIC, ports: [{number: 8080, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: internal, namespace: team}
spec: {hosts: [internal.team.svc.cluster.local], exportTo: ["."], resolution: STATIC, ports: [{number: 8080, name: http, protocol: HTTP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: shared}
spec: {hosts: [db.shared.svc.cluster.local], resolution: STATIC, ports: [{number: 9080, name: http, protocol: HTTP}, {number: 5432, name: tcp, protocol: TCP}]}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: istio-system}
spec: {hosts: [api.example.com], resolution: STATIC, ports: [{number: 443, name: tls, protocol: TLS}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: db.shared.svc.cluster.local}}]}]
`

func sidecarDoc(ns, name, spec string) string {
	return fmt.Sprintf("---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: %s, namespace: %s}\nspec:\n%s", name, ns, spec)
}

func scopeMesh(t *testing.T, sidecars ...string) *Mesh {
	t.Helper()
	objs, diags := config.Parse("mesh.yaml", []byte(scopeRegistry+strings.Join(sidecars, "\n")))
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("config: %s", d)
		}
	}
	m, _ := Build(objs, nil)
	return m
}

func hosts(ss []*Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, strings.TrimSuffix(s.Host, ".svc.cluster.local"))
	}
	return out
}

// Sidecar egress scoping as Istio's SidecarScope computes it: host forms ("./*", "*/*",
// "~/*", "ns/*", "*/host", "ns/*.suffix"), a namespace's own entry overriding "*/",
// exportTo still applying, the root namespace's default with "." meaning the proxy's
// namespace, selection by workloadSelector over the namespace's default, and the services
// a selected VirtualService routes to (clusters only).
func TestSidecarEgressScope(t *testing.T) {
	all := []string{"api.example.com", "api.team", "db.shared", "ratings.default", "reviews.default"}
	for _, tc := range []struct {
		name     string
		ns       string
		labels   map[string]string
		sidecars []string
		want     []string // visible services (clusters)
		listener []string // services with a listener on 9080
		sidecar  string   // the Sidecar chosen ("" for the default scope)
	}{
		{name: "no Sidecar: everything exported to the namespace", ns: "default", want: all, listener: []string{"db.shared", "ratings.default", "reviews.default"}},
		{name: "no Sidecar: a private service in its own namespace", ns: "team",
			want: []string{"api.example.com", "api.team", "db.shared", "internal.team", "ratings.default", "reviews.default"}},
		{name: "./* (plus the VirtualService's destination)", ns: "default", sidecars: []string{sidecarDoc("default", "s", "  egress: [{hosts: [\"./*\"]}]\n")},
			want: []string{"db.shared", "ratings.default", "reviews.default"}, listener: []string{"ratings.default", "reviews.default"}, sidecar: "default/s"},
		{name: "./* and shared/*", ns: "default", sidecars: []string{sidecarDoc("default", "s", "  egress: [{hosts: [\"./*\", \"shared/*\"]}]\n")},
			want: []string{"db.shared", "ratings.default", "reviews.default"}, listener: []string{"db.shared", "ratings.default", "reviews.default"}, sidecar: "default/s"},
		{name: "*/* is everything exported", ns: "default", sidecars: []string{sidecarDoc("default", "s", "  egress: [{hosts: [\"*/*\"]}]\n")},
			want: all, sidecar: "default/s"},
		{name: "exportTo still applies", ns: "default", sidecars: []string{sidecarDoc("default", "s", "  egress: [{hosts: [\"team/*\"]}]\n")},
			want: []string{"api.team"}, sidecar: "default/s"},
		{name: "~/* imports nothing", ns: "default", sidecars: []string{sidecarDoc("default", "s", "  egress: [{hosts: [\"~/*\"]}]\n")},
			sidecar: "default/s"},
		{name: "*/host", ns: "team", sidecars: []string{sidecarDoc("team", "s", "  egress: [{hosts: [\"*/ratings.default.svc.cluster.local\"]}]\n")},
			want: []string{"ratings.default"}, sidecar: "team/s"},
		{name: "wildcard suffix", ns: "team", sidecars: []string{sidecarDoc("team", "s", "  egress: [{hosts: [\"istio-system/*.example.com\"]}]\n")},
			want: []string{"api.example.com"}, sidecar: "team/s"},
		{name: "a namespace's own entry overrides */", ns: "team", sidecars: []string{sidecarDoc("team", "s", "  egress: [{hosts: [\"*/*\", \"default/nothing.example\"]}]\n")},
			want: []string{"api.example.com", "api.team", "db.shared", "internal.team"}, sidecar: "team/s"},
		{name: "root namespace default: . is the proxy's namespace", ns: "team", sidecars: []string{sidecarDoc("istio-system", "default", "  egress: [{hosts: [\"./*\"]}]\n")},
			want: []string{"api.team", "internal.team"}, sidecar: "istio-system/default"},
		{name: "the namespace's Sidecar wins over the root's", ns: "team", sidecars: []string{
			sidecarDoc("istio-system", "default", "  egress: [{hosts: [\"./*\"]}]\n"),
			sidecarDoc("team", "s", "  egress: [{hosts: [\"shared/*\"]}]\n")},
			want: []string{"db.shared"}, sidecar: "team/s"},
		{name: "a selector match wins over the namespace default", ns: "default", labels: map[string]string{"app": "reviews"}, sidecars: []string{
			sidecarDoc("default", "all", "  egress: [{hosts: [\"./*\"]}]\n"),
			sidecarDoc("default", "reviews", "  workloadSelector: {labels: {app: reviews}}\n  egress: [{hosts: [\"shared/*\"]}]\n")},
			want: []string{"db.shared"}, sidecar: "default/reviews"},
		{name: "no selector match: the namespace default", ns: "default", labels: map[string]string{"app": "ratings"}, sidecars: []string{
			sidecarDoc("default", "all", "  egress: [{hosts: [\"team/*\"]}]\n"),
			sidecarDoc("default", "reviews", "  workloadSelector: {labels: {app: reviews}}\n  egress: [{hosts: [\"shared/*\"]}]\n")},
			want: []string{"api.team"}, sidecar: "default/all"},
		{name: "a root Sidecar with a selector applies in the root namespace only", ns: "team", labels: map[string]string{"app": "api"}, sidecars: []string{
			sidecarDoc("istio-system", "sel", "  workloadSelector: {labels: {app: api}}\n  egress: [{hosts: [\"./*\"]}]\n")},
			want: []string{"api.example.com", "api.team", "db.shared", "internal.team", "ratings.default", "reviews.default"}},
		{name: "egress port: only that port of those hosts", ns: "default", sidecars: []string{
			sidecarDoc("default", "s", "  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    hosts: [\"./*\"]\n  - hosts: [\"shared/*\"]\n")},
			want: []string{"db.shared", "ratings.default", "reviews.default"}, listener: []string{"ratings.default", "reviews.default"}, sidecar: "default/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := scopeMesh(t, tc.sidecars...)
			sc := m.SidecarScope(&Proxy{Type: ProxySidecar, Namespace: tc.ns, Labels: tc.labels})
			if got := hosts(sc.Services()); !slices.Equal(got, tc.want) {
				t.Errorf("visible services = %v, want %v", got, tc.want)
			}
			chosen := ""
			if sc.Config != nil {
				chosen = sc.Config.Namespace + "/" + sc.Config.Name
			}
			if chosen != tc.sidecar {
				t.Errorf("Sidecar applied = %q, want %q", chosen, tc.sidecar)
			}
			if tc.listener != nil {
				if got := hosts(sc.ServicesOn(9080)); !slices.Equal(got, tc.listener) {
					t.Errorf("services with a 9080 listener = %v, want %v", got, tc.listener)
				}
			}
		})
	}
}

// The egress port limits a service's clusters to that port; the catch-all keeps them all.
func TestSidecarServicePorts(t *testing.T) {
	m := scopeMesh(t, sidecarDoc("default", "s", "  egress:\n  - port: {number: 9080, protocol: HTTP, name: http}\n    hosts: [\"./*\"]\n  - hosts: [\"shared/*\"]\n"))
	sc := m.SidecarScope(&Proxy{Type: ProxySidecar, Namespace: "default"})
	ports := func(host string) []uint32 {
		var out []uint32
		for _, p := range sc.ServicePorts(m.Service(host)) {
			out = append(out, p.Number)
		}
		return out
	}
	if got := ports("ratings.default.svc.cluster.local"); !slices.Equal(got, []uint32{9080}) {
		t.Errorf("ratings' ports = %v, want only the egress port 9080", got)
	}
	if got := ports("db.shared.svc.cluster.local"); !slices.Equal(got, []uint32{5432, 9080}) {
		t.Errorf("db's ports = %v, want every port (catch-all)", got)
	}
}

// outboundTrafficPolicy in a Sidecar overrides the mesh's; a gateway ignores Sidecars.
func TestSidecarOutboundPolicyAndGateways(t *testing.T) {
	m := scopeMesh(t, sidecarDoc("default", "s", "  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n"))
	if m.SidecarScope(&Proxy{Type: ProxySidecar, Namespace: "default"}).OutboundAllowAny() {
		t.Error("REGISTRY_ONLY in the Sidecar: still ALLOW_ANY")
	}
	if !m.SidecarScope(&Proxy{Type: ProxySidecar, Namespace: "team"}).OutboundAllowAny() {
		t.Error("another namespace lost the mesh's ALLOW_ANY")
	}
	if sc := m.SidecarScope(&Proxy{Type: ProxyRouter, Namespace: "default"}); sc.Config != nil || !sc.OutboundAllowAny() {
		t.Error("a gateway got the namespace's Sidecar")
	}
}
