package istioanalyze

import (
	"fmt"
	"strings"
	"testing"
)

// analyzeCase is one input for both analyzers. deviations lists the findings on which
// Lucid deliberately differs from Istio ("+" Lucid only, "-" Istio only), with the reason.
type analyzeCase struct {
	name       string
	docs       []string
	deviations map[string]string
}

// TestAnalyzeParity runs Istio's analyzers (istio.io/istio/pkg/config/analysis, as its own
// analyzer tests run them) and `lucid analyze` on each case and requires the same findings
// (code and object) for every code Lucid implements.
func TestAnalyzeParity(t *testing.T) {
	for _, tc := range analyzeCases() {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{tc.name + ".yaml": strings.Join(tc.docs, "\n---\n")}
			checkParity(t, files, tc.deviations)
		})
	}
}

func checkParity(t *testing.T, files map[string]string, deviations map[string]string) {
	t.Helper()
	ist := istio(t, files)
	luc, msgs := lucid(t, files)
	onlyIstio, onlyLucid, unknown := compare(ist, luc)
	var diffs []string
	for _, f := range onlyIstio {
		if deviations["-"+f.String()] == "" {
			diffs = append(diffs, "only Istio: "+f.String())
		}
	}
	for _, f := range onlyLucid {
		if deviations["+"+f.String()] == "" {
			diffs = append(diffs, "only Lucid: "+f.String())
		}
	}
	for d := range deviations {
		f := d[1:]
		found := false
		for _, x := range append(onlyIstio, onlyLucid...) {
			found = found || x.String() == f
		}
		if !found {
			diffs = append(diffs, "listed deviation does not occur: "+d)
		}
	}
	if len(unknown) > 0 {
		diffs = append(diffs, fmt.Sprintf("Istio codes in neither list: %v", unknown))
	}
	if len(diffs) > 0 {
		var lm strings.Builder
		for _, m := range msgs {
			lm.WriteString("\n    " + strings.ReplaceAll(m.String(), "\n", "\n    "))
		}
		t.Errorf("%s\n  Istio:%s\n  Lucid:%s", strings.Join(diffs, "\n"), describe(ist), lm.String())
	}
}

// Fixtures.

func ns(name string, labels ...string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: {%s}\n", name, strings.Join(labels, ", "))
}

// svc is a Service with a selector and ports "name:port[:target]".
func svc(ns, name, selector string, ports ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  selector: {%s}\n  ports:\n", name, ns, selector)
	for _, p := range ports {
		parts := strings.Split(p, ":")
		fmt.Fprintf(&b, "  - name: %s\n    port: %s\n", parts[0], parts[1])
		if len(parts) > 2 {
			fmt.Fprintf(&b, "    targetPort: %s\n", parts[2])
		}
	}
	return b.String()
}

func pod(ns, name, labels string, extra ...string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n  labels: {%s}\n%s", name, ns, labels, strings.Join(extra, ""))
}

// proxied is a pod spec with an istio-proxy container.
const proxied = "spec:\n  containers:\n  - {name: app, image: app}\n  - {name: istio-proxy, image: proxyv2}\n"

func istioObj(kind, ns, name, spec string) string {
	group := "networking.istio.io/v1"
	switch kind {
	case "AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication":
		group = "security.istio.io/v1"
	}
	return fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s", group, kind, name, ns, indent(spec))
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func vs(ns, name, spec string) string   { return istioObj("VirtualService", ns, name, spec) }
func dr(ns, name, spec string) string   { return istioObj("DestinationRule", ns, name, spec) }
func gw(ns, name, spec string) string   { return istioObj("Gateway", ns, name, spec) }
func se(ns, name, spec string) string   { return istioObj("ServiceEntry", ns, name, spec) }
func we(ns, name, spec string) string   { return istioObj("WorkloadEntry", ns, name, spec) }
func sc(ns, name, spec string) string   { return istioObj("Sidecar", ns, name, spec) }
func ap(ns, name, spec string) string   { return istioObj("AuthorizationPolicy", ns, name, spec) }
func reqa(ns, name, spec string) string { return istioObj("RequestAuthentication", ns, name, spec) }

// bookinfo is reviews with pods v1 and v2 in default.
var bookinfo = []string{
	svc("default", "reviews", "app: reviews", "http:9080"),
	pod("default", "reviews-v1", "app: reviews, version: v1", proxied),
	pod("default", "reviews-v2", "app: reviews, version: v2", proxied),
	svc("default", "ratings", "app: ratings", "http:9080"),
	pod("default", "ratings-v1", "app: ratings, version: v1", proxied),
}

func with(base []string, docs ...string) []string {
	return append(append([]string(nil), base...), docs...)
}

func analyzeCases() []analyzeCase {
	return []analyzeCase{
		// VirtualService destinations.
		{name: "vs-hosts-found", docs: with(bookinfo, vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n  - destination: {host: ratings.default.svc.cluster.local}"))},
		{name: "vs-host-not-found", docs: with(bookinfo, vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: nowhere}"))},
		{name: "vs-short-name-in-other-namespace", docs: with(bookinfo, vs("other", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}"))},
		{name: "vs-dotted-short-name", docs: with(bookinfo, vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews.default}"))},
		{name: "vs-mirror-not-found", docs: with(bookinfo, vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}\n  mirror: {host: shadow}\n  mirrors:\n  - destination: {host: shadow2}"))},
		{name: "vs-tcp-tls-destinations", docs: with(bookinfo, vs("default", "db", "hosts: [db.example.com]\ntcp:\n- route:\n  - destination: {host: db}\ntls:\n- match:\n  - sniHosts: [db.example.com]\n  route:\n  - destination: {host: reviews}"))},
		{name: "vs-port-required", docs: with(bookinfo,
			svc("default", "multi", "app: multi", "http:80", "grpc:90"),
			vs("default", "multi", "hosts: [multi]\nhttp:\n- route:\n  - destination: {host: multi}"),
			vs("default", "multi-ok", "hosts: [multi.example.com]\nhttp:\n- route:\n  - destination: {host: multi, port: {number: 90}}"),
			vs("default", "multi-bad-port", "hosts: [multi2.example.com]\nhttp:\n- route:\n  - destination: {host: multi, port: {number: 91}}"))},
		{name: "vs-serviceentry-hosts", docs: with(bookinfo,
			se("default", "ext", "hosts: [api.example.com, '*.wild.example.com']\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: https, protocol: TLS}"),
			vs("default", "ext", "hosts: [api.example.com]\ntls:\n- match:\n  - sniHosts: [api.example.com]\n  route:\n  - destination: {host: api.example.com}"),
			vs("default", "wild", "hosts: [x.wild.example.com]\ntls:\n- match:\n  - sniHosts: [x.wild.example.com]\n  route:\n  - destination: {host: x.wild.example.com, port: {number: 443}}"))},
		{name: "vs-exportto-private-serviceentry", docs: with(bookinfo,
			se("team", "private", "hosts: [private.example.com]\nexportTo: ['.']\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 80, name: http, protocol: HTTP}"),
			vs("default", "from-default", "hosts: [a.example.com]\nhttp:\n- route:\n  - destination: {host: private.example.com}"),
			vs("team", "from-team", "hosts: [b.example.com]\nhttp:\n- route:\n  - destination: {host: private.example.com}"))},
		{name: "vs-service-exportto-annotation", docs: with(bookinfo,
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: hidden\n  namespace: team\n  annotations: {networking.istio.io/exportTo: '.'}\nspec:\n  selector: {app: hidden}\n  ports:\n  - {name: http, port: 80}\n",
			vs("default", "to-hidden", "hosts: [c.example.com]\nhttp:\n- route:\n  - destination: {host: hidden.team.svc.cluster.local}"),
			vs("team", "to-hidden", "hosts: [d.example.com]\nhttp:\n- route:\n  - destination: {host: hidden}"))},

		// Subsets.
		{name: "vs-subsets", docs: with(bookinfo,
			dr("default", "reviews", "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v2, labels: {version: v2}}"),
			vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}\n    weight: 50\n  - destination: {host: reviews, subset: v3}\n    weight: 50\n  mirror: {host: reviews, subset: v9}"))},
		{name: "vs-subset-dr-other-namespace", docs: with(bookinfo,
			dr("istio-system", "reviews", "host: reviews.default.svc.cluster.local\nsubsets:\n- {name: v1, labels: {version: v1}}"),
			vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}"))},
		{name: "dr-subset-selects-nothing", docs: with(bookinfo,
			dr("default", "reviews", "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v3, labels: {version: v3}}"))},
		{name: "dr-unknown-host", docs: with(bookinfo,
			dr("default", "ghost", "host: ghost\nsubsets:\n- {name: v1, labels: {version: v1}}"),
			dr("default", "ext", "host: api.example.com"))},
		{name: "dr-no-pods", docs: []string{
			svc("default", "reviews", "app: reviews", "http:9080"),
			dr("default", "reviews", "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}")}},
		{name: "dr-serviceentry-selector", docs: with(bookinfo,
			se("default", "vm", "hosts: [vm.example.com]\nlocation: MESH_INTERNAL\nresolution: STATIC\nworkloadSelector: {labels: {app: vm}}\nports:\n- {number: 80, name: http, protocol: HTTP}"),
			pod("default", "vm-1", "app: vm, version: v1", proxied),
			dr("default", "vm", "host: vm.example.com\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v2, labels: {version: v2}}"))},
		{name: "dr-topology-subset", docs: with(bookinfo,
			"apiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\n  labels: {topology.kubernetes.io/region: eu, topology.kubernetes.io/zone: eu-1}\n",
			pod("default", "reviews-v4", "app: reviews, version: v4", "spec:\n  nodeName: node-a\n  containers:\n  - {name: app, image: app}\n"),
			dr("default", "reviews", "host: reviews\nsubsets:\n- {name: eu, labels: {topology.kubernetes.io/zone: eu-1}}\n- {name: us, labels: {topology.kubernetes.io/zone: us-1}}\n- {name: node, labels: {kubernetes.io/hostname: node-a}}"))},
		{name: "dr-subset-other-service-pods", docs: with(bookinfo,
			dr("default", "reviews", "host: reviews\nsubsets:\n- {name: r1, labels: {app: ratings}}")),
			deviations: map[string]string{"+IST0173 DestinationRule default/reviews": "Lucid matches a subset against the service's own workloads; Istio against any pod"}},
		{name: "dr-subset-workloadentries", docs: []string{
			se("default", "vm", "hosts: [vm.example.com]\nlocation: MESH_INTERNAL\nresolution: STATIC\nworkloadSelector: {labels: {app: vm}}\nports:\n- {number: 80, name: http, protocol: HTTP}"),
			we("default", "vm-1", "address: 10.0.0.1\nlabels: {app: vm, version: v1}"),
			// Istio reports subsets v1 and v2, Lucid v2 only: it counts WorkloadEntries (v1 has one).
			dr("default", "vm", "host: vm.example.com\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v2, labels: {version: v2}}")}},
		{name: "dr-subset-workloadentries-only", docs: []string{
			se("default", "vm", "hosts: [vm.example.com]\nlocation: MESH_INTERNAL\nresolution: STATIC\nworkloadSelector: {labels: {app: vm}}\nports:\n- {number: 80, name: http, protocol: HTTP}"),
			we("default", "vm-1", "address: 10.0.0.1\nlabels: {app: vm, version: v1}"),
			dr("default", "vm", "host: vm.example.com\nsubsets:\n- {name: v1, labels: {version: v1}}")},
			deviations: map[string]string{"-IST0173 DestinationRule default/vm": "Lucid counts WorkloadEntries (subset v1 has one); Istio's analyzer counts only pods"}},
		{name: "dr-tls-without-ca", docs: with(bookinfo,
			se("default", "ext", "hosts: [api.example.com]\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: https, protocol: TLS}"),
			dr("default", "simple", "host: api.example.com\ntrafficPolicy:\n  tls: {mode: SIMPLE}"),
			dr("default", "mutual", "host: api.example.com\ntrafficPolicy:\n  tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}"),
			dr("default", "verified", "host: api.example.com\ntrafficPolicy:\n  tls: {mode: SIMPLE, caCertificates: /ca.pem}"),
			dr("default", "port-level", "host: api.example.com\ntrafficPolicy:\n  portLevelSettings:\n  - port: {number: 443}\n    tls: {mode: SIMPLE}\n  - port: {number: 8443}\n    tls: {mode: SIMPLE, caCertificates: /ca.pem}"),
			dr("default", "istio-mutual", "host: api.example.com\ntrafficPolicy:\n  tls: {mode: ISTIO_MUTUAL}"))},

		// Gateways and VirtualServices bound to them.
		{name: "gateway-default-ingress", docs: with(bookinfo,
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [web.example.com]"),
			vs("default", "web", "hosts: [web.example.com]\ngateways: [web]\nhttp:\n- route:\n  - destination: {host: reviews}"))},
		{name: "gateway-selector-not-found", docs: with(bookinfo,
			gw("default", "egress", "selector: {istio: egressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']"))},
		{name: "gateway-port-not-on-service", docs: with(bookinfo,
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*']\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}"))},
		{name: "gateway-own-pods-and-service", docs: with(bookinfo,
			pod("gw", "my-gateway-1", "app: my-gateway", proxied),
			svc("gw", "my-gateway", "app: my-gateway", "http:80:8080", "https:443"),
			gw("gw", "mine", "selector: {app: my-gateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*']\n- port: {number: 80, name: http2, protocol: HTTP}\n  hosts: ['*']\n- port: {number: 9000, name: tcp, protocol: TCP}\n  hosts: ['*']"))},
		{name: "vs-gateway-references", docs: with(bookinfo,
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [web.example.com, 'team/*.team.example.com']"),
			vs("default", "ok", "hosts: [web.example.com]\ngateways: [web]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("default", "missing", "hosts: [web.example.com]\ngateways: [nope, default/web, mesh]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("default", "wrong-host", "hosts: [other.example.com]\ngateways: [web]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("team", "team-host", "hosts: [a.team.example.com]\ngateways: [default/web]\nhttp:\n- route:\n  - destination: {host: reviews.default.svc.cluster.local}"),
			vs("default", "team-host-wrong-ns", "hosts: [b.team.example.com]\ngateways: [web]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("default", "internal", "hosts: [web.example.com]\ngateways: [default/web~istio-autogenerated-k8s-gateway~http]\nhttp:\n- route:\n  - destination: {host: reviews}"))},
		{name: "gateway-host-scopes", docs: with(bookinfo,
			gw("istio-system", "shared", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['./local.example.com', '*/any.example.com', 'istio-system/sys.example.com']"),
			vs("default", "local", "hosts: [local.example.com]\ngateways: [istio-system/shared]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("default", "any", "hosts: [any.example.com]\ngateways: [istio-system/shared]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("istio-system", "sys", "hosts: [sys.example.com]\ngateways: [shared]\nhttp:\n- route:\n  - destination: {host: reviews.default.svc.cluster.local}"))},
		{name: "ingress-subset-not-effective", docs: with(bookinfo,
			dr("default", "reviews", "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}"),
			vs("default", "reviews", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v1}"),
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']"),
			vs("default", "web", "hosts: ['*']\ngateways: [web]\nhttp:\n- route:\n  - destination: {host: reviews}"))},
		{name: "conflicting-gateways", docs: with(bookinfo,
			gw("default", "a", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [shop.example.com, x.example.com]"),
			gw("default", "b", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [shop.example.com]"),
			gw("default", "c", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*.example.com']"),
			gw("default", "d", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: [shop.example.com]"))},
		{name: "conflicting-gateways-bind", docs: with(bookinfo,
			gw("default", "a", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [shop.example.com]"),
			gw("default", "e", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  bind: 10.0.0.1\n  hosts: [shop.example.com]"))},
		{name: "conflicting-gateways-subselector", docs: with(bookinfo,
			pod("istio-system", "ingress-2", "istio: ingressgateway, app: ingress", proxied),
			svc("istio-system", "ingress-2", "app: ingress", "http:80"),
			gw("default", "a", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [shop.example.com]"),
			gw("default", "b", "selector: {istio: ingressgateway, app: ingress}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [shop.example.com]"))},
		{name: "duplicate-certificates", docs: with(bookinfo,
			gw("default", "a", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [a.example.com]\n  tls: {mode: SIMPLE, credentialName: shared-cert}"),
			gw("default", "b", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https-b, protocol: HTTPS}\n  hosts: [b.example.com]\n  tls: {mode: SIMPLE, credentialName: shared-cert}"),
			gw("default", "c", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https-c, protocol: HTTPS}\n  hosts: [c.example.com]\n  tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}"),
			gw("default", "d", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https-d, protocol: HTTPS}\n  hosts: [d.example.com]\n  tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}"))},
		{name: "files-define-ingress-pod", docs: with(bookinfo,
			pod("istio-system", "ingress-1", "istio: ingressgateway", proxied),
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*']"))},
		{name: "files-define-ingress-workloadentry", docs: with(bookinfo,
			"apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata:\n  name: ingress\n  namespace: istio-system\n  annotations: {lucid.dev/proxy: router}\nspec:\n  address: 127.0.0.1\n  labels: {istio: ingressgateway}\n",
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 8080, name: http, protocol: HTTP}\n  hosts: ['*']")),
			deviations: map[string]string{"-IST0162 Gateway default/web": "a WorkloadEntry labelled istio=ingressgateway is Lucid's local-mode ingress gateway: Lucid does not assume Istio's default one (whose Service lacks port 8080)"}},
		{name: "gateway-credentials", docs: with(bookinfo,
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [a.example.com]\n  tls: {mode: SIMPLE, credentialName: missing-cert}\n- port: {number: 443, name: https-2, protocol: HTTPS}\n  hosts: [b.example.com]\n  tls: {mode: SIMPLE, credentialName: bad-cert}\n- port: {number: 443, name: https-3, protocol: HTTPS}\n  hosts: [c.example.com]\n  tls: {mode: SIMPLE, credentialName: good-cert}"),
			"apiVersion: v1\nkind: Secret\nmetadata:\n  name: bad-cert\n  namespace: istio-system\ntype: kubernetes.io/tls\ndata:\n  tls.crt: bm90IGEgY2VydA==\n  tls.key: bm90IGEga2V5\n",
			"apiVersion: v1\nkind: Secret\nmetadata:\n  name: good-cert\n  namespace: istio-system\ntype: kubernetes.io/tls\ndata:\n  tls.crt: "+goodCertB64+"\n  tls.key: a2V5\n")},

		// Mesh VirtualServices for the same host.
		{name: "conflicting-mesh-hosts", docs: with(bookinfo,
			vs("default", "a", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("default", "b", "hosts: [reviews.default.svc.cluster.local]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			vs("default", "c", "hosts: [ratings]\ngateways: [mesh]\nhttp:\n- route:\n  - destination: {host: ratings}"),
			vs("other", "d", "hosts: [ratings.default.svc.cluster.local]\nexportTo: ['.']\nhttp:\n- route:\n  - destination: {host: ratings.default.svc.cluster.local}"),
			vs("default", "gw-only", "hosts: [reviews]\ngateways: [web]\nhttp:\n- route:\n  - destination: {host: reviews}"),
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']"))},
		{name: "conflicting-mesh-hosts-exportto", docs: with(bookinfo,
			vs("team", "a", "hosts: [api.example.com]\nexportTo: ['.']\nhttp:\n- route:\n  - destination: {host: reviews.default.svc.cluster.local}"),
			vs("other", "b", "hosts: [api.example.com]\nexportTo: ['.']\nhttp:\n- route:\n  - destination: {host: reviews.default.svc.cluster.local}"),
			vs("team", "c", "hosts: ['*.example.com']\nhttp:\n- route:\n  - destination: {host: reviews.default.svc.cluster.local}"))},

		// Delegates and unreachable rules.
		{name: "delegate-analysed", docs: with(bookinfo,
			vs("default", "root", "hosts: [reviews]\nhttp:\n- match:\n  - uri: {prefix: /api}\n  delegate: {name: api, namespace: default}\n- route:\n  - destination: {host: reviews}"),
			vs("default", "api", "http:\n- route:\n  - destination: {host: nowhere}\n  - destination: {host: reviews, subset: v7}"))},
		{name: "unreachable-rules", docs: with(bookinfo,
			vs("default", "reviews", "hosts: [reviews]\nhttp:\n- name: a\n  match:\n  - uri: {prefix: /a}\n  route:\n  - destination: {host: reviews}\n- name: dup\n  match:\n  - uri: {prefix: /a}\n  route:\n  - destination: {host: reviews}\n- name: partly\n  match:\n  - uri: {prefix: /a}\n  - uri: {prefix: /b}\n  route:\n  - destination: {host: reviews}\n- name: covered\n  match:\n  - uri: {prefix: /a/b}\n  route:\n  - destination: {host: reviews}\n- route:\n  - destination: {host: reviews}\n- name: after\n  match:\n  - uri: {exact: /z}\n  route:\n  - destination: {host: reviews}\n- route:\n  - destination: {host: reviews}"),
			vs("default", "tcp", "hosts: [tcp.example.com]\ntcp:\n- match:\n  - port: 9000\n  route:\n  - destination: {host: reviews}\n- match:\n  - port: 9000\n  route:\n  - destination: {host: reviews}\n- route:\n  - destination: {host: reviews}\n- route:\n  - destination: {host: reviews}"))},

		// JWT claim routing.
		{name: "jwt-claim-routing", docs: with(bookinfo,
			gw("default", "web", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']"),
			vs("default", "claims", "hosts: ['*']\ngateways: [web]\nhttp:\n- match:\n  - headers:\n      '@request.auth.claims.group': {exact: admin}\n  route:\n  - destination: {host: reviews}"),
			gw("default", "web2", "selector: {app: gw2}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']"),
			pod("default", "gw2-1", "app: gw2", proxied),
			reqa("default", "jwt", "selector: {matchLabels: {app: gw2}}\njwtRules:\n- issuer: https://issuer.example.com"),
			vs("default", "claims2", "hosts: ['*']\ngateways: [web2]\nhttp:\n- match:\n  - headers:\n      '@request.auth.claims[group]': {exact: admin}\n  route:\n  - destination: {host: reviews}"))},

		// Sidecars.
		{name: "sidecars", docs: with(bookinfo,
			sc("default", "all-1", "egress:\n- hosts: ['./*']"),
			sc("default", "all-2", "egress:\n- hosts: ['istio-system/*']"),
			sc("default", "reviews-a", "workloadSelector: {labels: {app: reviews}}\negress:\n- hosts: ['./*']"),
			sc("default", "reviews-v1", "workloadSelector: {labels: {version: v1}}\negress:\n- hosts: ['./*']"),
			sc("default", "nobody", "workloadSelector: {labels: {app: nobody}}\negress:\n- hosts: ['./*']"),
			sc("other", "reviews-elsewhere", "workloadSelector: {labels: {app: reviews}}\negress:\n- hosts: ['./*']"))},
		{name: "sidecars-ambient", docs: []string{
			ns("mesh", "istio.io/dataplane-mode: ambient"),
			pod("default", "amb", "app: amb", "  annotations: {ambient.istio.io/redirection: enabled}\nspec:\n  containers:\n  - {name: app, image: app}\n"),
			sc("mesh", "ns-wide", "egress:\n- hosts: ['./*']"),
			sc("default", "for-amb", "workloadSelector: {labels: {app: amb}}\negress:\n- hosts: ['./*']"),
			sc("default", "deprecated", "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n  egressProxy: {host: egress.example.com, port: {number: 80}}")}},

		// ServiceEntries.
		{name: "serviceentry-addresses", docs: []string{
			se("default", "tcp-no-address", "hosts: [db.example.com]\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 5432, name: tcp, protocol: TCP}\n- {number: 80, name: http, protocol: HTTP}\n- {number: 81, name: none}"),
			se("default", "tcp-address", "hosts: [db2.example.com]\naddresses: [10.1.1.1]\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 5432, name: tcp, protocol: TCP}")}},
		{name: "serviceentry-conflicting-protocols", docs: []string{
			se("default", "a", "hosts: [api.example.com]\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: https, protocol: HTTPS}"),
			se("default", "b", "hosts: [api.example.com]\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: tls, protocol: TLS}"),
			se("team", "c", "hosts: [api.example.com]\nexportTo: ['.']\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: http, protocol: HTTP}"),
			se("team", "d", "hosts: [other.example.com]\nexportTo: ['.']\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: https, protocol: https}"),
			se("other", "e", "hosts: [other.example.com]\nexportTo: ['.']\nlocation: MESH_EXTERNAL\nresolution: DNS\nports:\n- {number: 443, name: tls, protocol: TLS}")}},

		// Kubernetes objects.
		{name: "service-port-names", docs: []string{
			svc("default", "named", "app: named", "http:80", "http-web:81", "grpc:82", "tcp-db:83", "web:84", "mysql:3306", "custom:85"),
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: appproto\n  namespace: default\nspec:\n  selector: {app: x}\n  ports:\n  - {name: web, port: 80, appProtocol: http}\n  - {name: web2, port: 81, appProtocol: kubernetes.io/h2c}\n  - {name: dns, port: 53, protocol: UDP}\n",
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\n  namespace: default\nspec:\n  type: ExternalName\n  externalName: api.example.com\n  ports:\n  - {name: tcp, port: 443}\n  - {name: web, port: 80}\n",
			"apiVersion: v1\nkind: Service\nmetadata:\n  name: istiod\n  namespace: istio-system\n  labels: {istio: pilot}\nspec:\n  ports:\n  - {name: grpc-xds, port: 15010}\n  - {name: webhook, port: 443}\n"}},
		{name: "injection", docs: []string{
			ns("plain"),
			ns("injected", "istio-injection: enabled"),
			ns("disabled", "istio-injection: disabled"),
			ns("revision", "istio.io/rev: canary"),
			ns("both", "istio-injection: enabled", "istio.io/rev: canary"),
			ns("kube-system"),
			pod("injected", "with-proxy", "app: a", proxied),
			pod("injected", "without-proxy", "app: b", "spec:\n  containers:\n  - {name: app, image: app}\n"),
			pod("injected", "opted-out", "app: c, sidecar.istio.io/inject: 'false'", "spec:\n  containers:\n  - {name: app, image: app}\n"),
			pod("injected", "host-network", "app: d", "spec:\n  hostNetwork: true\n  containers:\n  - {name: app, image: app}\n"),
			pod("plain", "plain-pod", "app: e", "spec:\n  containers:\n  - {name: app, image: app}\n"),
			pod("default", "uid", "app: f", "spec:\n  securityContext: {runAsUser: 1337}\n  containers:\n  - name: app\n    image: app\n    securityContext: {runAsUser: 1337}\n")}},

		// AuthorizationPolicies.
		{name: "authorization-policies", docs: []string{
			ns("default", "istio-injection: enabled"),
			ns("team", "istio-injection: enabled"),
			pod("default", "reviews-v1", "app: reviews, version: v1", proxied),
			ap("default", "reviews", "selector: {matchLabels: {app: reviews}}\nrules:\n- from:\n  - source: {namespaces: [team, ghost, 'te*', '*am', '*']}"),
			ap("default", "nobody", "selector: {matchLabels: {app: nobody}}\nrules:\n- {}"),
			ap("team", "ns-wide", "rules:\n- {}"),
			ap("istio-system", "mesh-wide", "selector: {matchLabels: {app: reviews}}\nrules:\n- {}"),
			ap("istio-system", "mesh-wide-nobody", "selector: {matchLabels: {app: nobody}}\nrules:\n- from:\n  - source: {notNamespaces: [missing]}")}},

		// Objects that fail validation are reported and still analysed.
		{name: "invalid-objects-still-analysed", docs: with(bookinfo,
			vs("default", "bad", "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: nowhere}\n  timeout: -1s"),
			dr("default", "bad", "host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}\n- {name: v1, labels: {version: v9}}"))},
		{name: "invalid-gateway-and-serviceentry", docs: with(bookinfo,
			gw("default", "bad", "selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: []"),
			se("default", "bad", "hosts: []\nports:\n- {number: 80, name: http, protocol: HTTP}"),
			vs("default", "bad-gw", "hosts: ['*']\ngateways: [bad]\nhttp:\n- route:\n  - destination: {host: reviews}"))},
	}
}
