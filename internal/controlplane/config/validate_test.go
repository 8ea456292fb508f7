package config

import (
	"strings"
	"testing"
)

// doc builds one object document; spec is indented YAML under "spec:".
func doc(apiVersion, kind, name, spec string) string {
	return "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\nspec:\n" + indent(spec)
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func diagStrings(diags []Diagnostic) []string {
	out := []string{}
	for _, d := range diags {
		out = append(out, d.Level.String()+" "+d.String())
	}
	return out
}

func checkDiags(t *testing.T, got []Diagnostic, want []string) {
	t.Helper()
	gs := diagStrings(got)
	if strings.Join(gs, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n got: %q\nwant: %q", gs, want)
	}
}

const (
	net1 = "networking.istio.io/v1"
	sec1 = "security.istio.io/v1"
)

type validationCase struct {
	name  string
	kind  string
	spec  string
	want  []string // diagnostics, "level file:line: ..." (objects start at line 2: kind)
	valid bool     // object accepted
}

func runValidationCases(t *testing.T, cases []validationCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := net1
			if tc.kind == KindPeerAuthentication || tc.kind == KindAuthorizationPolicy {
				api = sec1
			}
			objs, diags := Parse("t.yaml", []byte(doc(api, tc.kind, "x", tc.spec)))
			checkDiags(t, diags, tc.want)
			if got := len(objs) == 1; got != tc.valid {
				t.Errorf("accepted = %v, want %v", got, tc.valid)
			}
		})
	}
}

func TestValidateVirtualService(t *testing.T) {
	const p = "t.yaml:%d: VirtualService default/x: "
	e := func(line int, rest string) string { return "error " + strings.Replace(p, "%d", itoa(line), 1) + rest }
	w := func(line int, rest string) string { return "warning " + strings.Replace(p, "%d", itoa(line), 1) + rest }
	route := "http:\n- route:\n  - destination: {host: reviews}\n"
	runValidationCases(t, []validationCase{
		{name: "minimal", kind: KindVirtualService, spec: "hosts: [reviews]\n" + route, valid: true},
		{name: "weights need not sum to 100, unknown subset accepted", kind: KindVirtualService, valid: true,
			spec: "hosts: [reviews]\nhttp:\n- route:\n  - destination: {host: reviews, subset: v9}\n    weight: 10\n  - destination: {host: nowhere}\n    weight: 20\n"},
		{name: "unknown field", kind: KindVirtualService, spec: "hosts: [reviews]\nhttp:\n- rout:\n  - destination: {host: reviews}\n",
			want: []string{e(8, `spec.http[0].rout: unknown field "rout"`)}},
		{name: "no http tcp tls", kind: KindVirtualService, spec: "hosts: [reviews]\n",
			want: []string{e(5, "spec: http, tcp or tls must be provided in virtual service")}},
		{name: "bad host", kind: KindVirtualService, spec: "hosts: [\"re_views\"]\n" + route,
			want: []string{e(6, `spec.hosts[0]: domain name "re_views" invalid (label "re_views" invalid)`)}},
		{name: "wildcard host for mesh", kind: KindVirtualService, spec: "hosts: [\"*\"]\n" + route,
			want: []string{e(6, "spec.hosts[0]: wildcard host * is not allowed for virtual services bound to the mesh gateway")}},
		{name: "wildcard prefix and IP host ok", kind: KindVirtualService, spec: "hosts: [\"*.example.com\", 10.0.0.1]\n" + route, valid: true},
		{name: "missing destination host", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- route:\n  - destination: {subset: v1}\n",
			want: []string{e(9, "spec.http[0].route[0].destination.host: destination host is required")}},
		{name: "no route", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- timeout: 1s\n",
			want: []string{e(8, "spec.http[0]: HTTP route, redirect or direct_response is required")}},
		{name: "negative weight", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n    weight: -1\n",
			want: []string{e(10, "spec.http[0].route[0].weight: weight -1 < 0")}},
		{name: "total weight zero", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- route:\n  - destination: {host: r}\n  - destination: {host: s}\n",
			want: []string{e(8, "spec.http[0].route: total destination weight = 0")}},
		{name: "route and redirect", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- redirect: {uri: /x}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(8, "spec.http[0]: HTTP route cannot contain both route and redirect")}},
		{name: "direct response status", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- directResponse: {status: 700}\n",
			want: []string{e(8, "spec.http[0].directResponse.status: HTTP status 700 is not in range 200-599")}},
		{name: "bad regex", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- match:\n  - uri:\n      regex: \"(\"\n  route:\n  - destination: {host: r}\n",
			want: []string{e(10, "spec.http[0].match[0].uri.regex: invalid regex \"(\": missing closing ): `(` (RE2 syntax)")}},
		{name: "empty string match accepted", kind: KindVirtualService, valid: true, spec: "hosts: [r]\nhttp:\n- match:\n  - authority: {}\n  route:\n  - destination: {host: r}\n"},
		{name: "empty prefix", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- match:\n  - authority: {prefix: \"\"}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(9, "spec.http[0].match[0].authority.prefix: prefix string match should not be empty")}},
		{name: "two match types", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- match:\n  - uri: {exact: /a, prefix: /b}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(9, "spec.http[0].match[0].uri.prefix: only one of exact, prefix, regex may be set (exact is already set)")}},
		{name: "header regex and name", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- match:\n  - headers:\n      \"x y\": {exact: a}\n      end-user: {regex: \"[\"}\n  route:\n  - destination: {host: r}\n",
			want: []string{
				e(11, "spec.http[0].match[0].headers[end-user].regex: invalid regex \"[\": missing closing ]: `[` (RE2 syntax)"),
				e(10, `spec.http[0].match[0].headers[x y]: header name "x y" is not a valid header name`),
			}},
		{name: "retries", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- retries: {attempts: 3, perTryTimeout: 0.5ms, retryOn: \"5xx,bogus,503\"}\n  route:\n  - destination: {host: r}\n",
			want: []string{
				e(8, "spec.http[0].retries.perTryTimeout: duration 500µs must be at least 1ms"),
				e(8, `spec.http[0].retries.retryOn: "bogus" is not a valid retryOn policy`),
			}},
		{name: "negative attempts", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- retries: {attempts: -1}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(8, "spec.http[0].retries.attempts: attempts cannot be negative")}},
		{name: "bad duration", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- timeout: 10x\n  route:\n  - destination: {host: r}\n",
			want: []string{e(8, `spec.http[0].timeout: invalid duration "10x"`)}},
		{name: "negative timeout", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- timeout: -1s\n  route:\n  - destination: {host: r}\n",
			want: []string{e(8, "spec.http[0].timeout: duration -1s must be at least 1ms")}},
		{name: "fault", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- fault:\n    abort: {httpStatus: 600, percentage: {value: 101}}\n  route:\n  - destination: {host: r}\n",
			want: []string{
				e(9, "spec.http[0].fault.abort.percentage.value: percentage 101 is neither 0.0, nor in range [0.0001, 100.0]"),
				e(9, "spec.http[0].fault.abort.httpStatus: HTTP status 600 is not in range 200-599"),
			}},
		{name: "mirror percentage", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- mirror: {host: m}\n  mirrorPercentage: {value: 150}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(9, "spec.http[0].mirrorPercentage.value: mirror percentage 150 is not in range 0..100")}},
		{name: "rewrite uri and regex", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- rewrite: {uri: /a, uriRegexRewrite: {match: a, rewrite: b}}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(8, "spec.http[0].rewrite: rewrite may only contain one of uri or uriRegexRewrite")}},
		{name: "delegate VS", kind: KindVirtualService, spec: "http:\n- match:\n  - uri: {prefix: /a}\n  route:\n  - destination: {host: r}\n", valid: true},
		{name: "delegate VS regex", kind: KindVirtualService, valid: true, spec: "http:\n- match:\n  - uri: {regex: a.*}\n  route:\n  - destination: {host: r}\n"},
		{name: "root with delegate and route", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- delegate: {name: d}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(9, "spec.http[0].route: root HTTP route  must not specify route")}},
		{name: "tcp route", kind: KindVirtualService, spec: "hosts: [r]\ntcp:\n- match:\n  - port: 70000\n",
			want: []string{
				e(9, "spec.tcp[0].match[0].port: port number 70000 must be in the range 1..65535"),
				e(8, "spec.tcp[0].route: TCP route is required"),
			}},
		{name: "tls sni not covered", kind: KindVirtualService, spec: "hosts: [a.com]\ntls:\n- match:\n  - sniHosts: [b.com]\n  route:\n  - destination: {host: a.com}\n",
			want: []string{e(9, "spec.tls[0].match[0].sniHosts[0]: SNI host \"b.com\" is not a compatible subset of any of the virtual service hosts: [a.com]")}},
		{name: "deprecated mirrorPercent warns", kind: KindVirtualService, valid: true, spec: "hosts: [r]\nhttp:\n- mirror: {host: m}\n  mirrorPercent: 50\n  route:\n  - destination: {host: r}\n",
			want: []string{w(9, `spec.http[0].mirrorPercent: using deprecated setting "mirrorPercent", use "mirrorPercentage" instead`)}},
		{name: "wrong type", kind: KindVirtualService, spec: "hosts: reviews\n" + route,
			want: []string{e(6, `spec.hosts: expected a list, got string "reviews"`)}},
		{name: "bad enum", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- redirect: {uri: /a, derivePort: NOPE}\n",
			want: []string{e(8, `spec.http[0].redirect.derivePort: invalid value "NOPE", expected one of FROM_PROTOCOL_DEFAULT, FROM_REQUEST_PORT`)}},
		{name: "header op host", kind: KindVirtualService, spec: "hosts: [r]\nhttp:\n- headers:\n    response:\n      set: {Host: a}\n  route:\n  - destination: {host: r}\n",
			want: []string{e(10, `spec.http[0].headers.response.set[Host]: invalid header "Host": cannot set Host header`)}},
	})
}

func TestValidateDestinationRule(t *testing.T) {
	e := func(line int, rest string) string {
		return "error t.yaml:" + itoa(line) + ": DestinationRule default/x: " + rest
	}
	runValidationCases(t, []validationCase{
		{name: "ok", kind: KindDestinationRule, valid: true, spec: "host: reviews\ntrafficPolicy:\n  loadBalancer: {simple: ROUND_ROBIN}\n  connectionPool:\n    tcp: {connectTimeout: 100ms, maxConnections: 10}\nsubsets:\n- name: v1\n  labels: {version: v1}\n"},
		{name: "host required", kind: KindDestinationRule, spec: "subsets: []\n",
			want: []string{e(5, "spec.host: empty domain name not allowed")}},
		{name: "duplicate subset", kind: KindDestinationRule, spec: "host: reviews\nsubsets:\n- name: v1\n- name: v1\n",
			want: []string{e(9, `spec.subsets[1].name: duplicate subset "v1"`)}},
		{name: "subset name", kind: KindDestinationRule, spec: "host: reviews\nsubsets:\n- name: V_1\n- labels: {a: b}\n",
			want: []string{e(8, "spec.subsets[0].name: subset name is invalid: V_1"), e(9, "spec.subsets[1].name: subset name cannot be empty")}},
		{name: "subset labels", kind: KindDestinationRule, spec: "host: reviews\nsubsets:\n- name: v1\n  labels: {version: \"a b\"}\n",
			want: []string{e(9, `spec.subsets[0].labels[version]: invalid label value "a b" for key "version"`)}},
		{name: "empty traffic policy", kind: KindDestinationRule, spec: "host: r\ntrafficPolicy: {}\n",
			want: []string{e(7, "spec.trafficPolicy: traffic policy must have at least one field")}},
		{name: "connection pool negative", kind: KindDestinationRule, spec: "host: r\ntrafficPolicy:\n  connectionPool:\n    http: {http2MaxRequests: -1}\n",
			want: []string{e(9, "spec.trafficPolicy.connectionPool.http.http2MaxRequests: must be non-negative (got -1)")}},
		{name: "outlier percent", kind: KindDestinationRule, spec: "host: r\ntrafficPolicy:\n  outlierDetection: {maxEjectionPercent: 120, interval: 0s}\n",
			want: []string{e(8, "spec.trafficPolicy.outlierDetection.interval: duration 0s must be at least 1ms"), e(8, "spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 120 is not in range 0..100")}},
		{name: "bad lb enum", kind: KindDestinationRule, spec: "host: r\ntrafficPolicy:\n  loadBalancer: {simple: FASTEST}\n",
			want: []string{e(8, `spec.trafficPolicy.loadBalancer.simple: invalid value "FASTEST", expected one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST`)}},
		{name: "selector exportTo", kind: KindDestinationRule, spec: "host: r\nworkloadSelector:\n  matchLabels: {app: a}\nexportTo: [\"*\"]\n",
			want: []string{e(9, "spec.exportTo: destination rule with workload selector cannot have exportTo beyond current namespace")}},
		{name: "exportTo duplicates", kind: KindDestinationRule, spec: "host: r\nexportTo: [default, \".\"]\n",
			want: []string{e(7, "spec.exportTo[1]: duplicate entries in exportTo: . and current namespace default")}},
	})
}

func TestValidateServiceEntry(t *testing.T) {
	e := func(line int, rest string) string {
		return "error t.yaml:" + itoa(line) + ": ServiceEntry default/x: " + rest
	}
	ports := "ports:\n- {number: 9080, name: http, protocol: HTTP}\n"
	runValidationCases(t, []validationCase{
		{name: "static with selector", kind: KindServiceEntry, valid: true, spec: "hosts: [reviews.default.svc.cluster.local]\nresolution: STATIC\nworkloadSelector:\n  labels: {app: reviews}\n" + ports},
		{name: "static endpoints", kind: KindServiceEntry, valid: true, spec: "hosts: [r]\naddresses: [240.0.0.1, 10.0.0.0/8]\nresolution: STATIC\nendpoints:\n- address: 127.0.0.10\n  ports: {http: 19080}\n" + ports},
		{name: "hosts required", kind: KindServiceEntry, spec: "resolution: STATIC\n" + ports,
			want: []string{e(5, "spec.hosts: service entry must have at least one host")}},
		{name: "ports", kind: KindServiceEntry, spec: "hosts: [r]\nresolution: STATIC\nports:\n- {number: 0, name: http, protocol: http}\n- {number: 80, name: http, protocol: FTP}\n- {number: 80, name: Bad_Name}\n",
			want: []string{
				e(9, "spec.ports[0].number: port number 0 must be in the range 1..65535"),
				e(10, `spec.ports[1].name: service entry port name "http" already defined`),
				e(10, `spec.ports[1].protocol: unsupported protocol "FTP" (want HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, MONGO, REDIS, MYSQL or UDP)`),
				e(11, "spec.ports[2].number: service entry port 80 already defined"),
				e(11, `spec.ports[2].name: invalid port name "Bad_Name": must be an RFC 1123 label`),
			}},
		{name: "port number too big", kind: KindServiceEntry, spec: "hosts: [r]\nresolution: STATIC\nports:\n- {number: 70000, name: http}\n",
			want: []string{e(9, "spec.ports[0].number: port number 70000 must be in the range 1..65535")}},
		{name: "selector and endpoints", kind: KindServiceEntry, spec: "hosts: [r]\nresolution: STATIC\nworkloadSelector:\n  labels: {app: a}\nendpoints:\n- address: 1.2.3.4\n" + ports,
			want: []string{e(5, "spec: only one of workloadSelector or endpoints is allowed in a ServiceEntry")}},
		{name: "static needs IPs", kind: KindServiceEntry, spec: "hosts: [r]\nresolution: STATIC\nendpoints:\n- address: foo.com\n" + ports,
			want: []string{e(9, `spec.endpoints[0].address: endpoint address "foo.com" is not a valid IP address`)}},
		{name: "bad address", kind: KindServiceEntry, spec: "hosts: [r]\naddresses: [1.2.3]\nresolution: STATIC\n" + ports,
			want: []string{e(7, `spec.addresses[0]: "1.2.3" is not a valid IP address`)}},
		{name: "endpoint port not defined", kind: KindServiceEntry, spec: "hosts: [r]\nresolution: STATIC\nendpoints:\n- address: 1.2.3.4\n  ports: {grpc: 80}\n" + ports,
			want: []string{e(10, "spec.endpoints[0].ports[grpc]: endpoint port 80 is not defined by the service entry")}},
		{name: "DNS warns", kind: KindServiceEntry, valid: true, spec: "hosts: [example.com]\nresolution: DNS\n" + ports,
			want: []string{"warning t.yaml:7: ServiceEntry default/x: spec.resolution: resolution DNS is accepted, but Lucid resolves endpoints statically only (STATIC and NONE)"}},
		{name: "resolution enum", kind: KindServiceEntry, spec: "hosts: [r]\nresolution: static\n" + ports,
			want: []string{e(7, `spec.resolution: invalid value "static", expected one of NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS`)}},
	})
}

func TestValidateWorkloadEntry(t *testing.T) {
	e := func(line int, rest string) string {
		return "error t.yaml:" + itoa(line) + ": WorkloadEntry default/x: " + rest
	}
	runValidationCases(t, []validationCase{
		{name: "ok", kind: KindWorkloadEntry, valid: true, spec: "address: 127.0.0.11\nlabels: {app: reviews, version: v1}\nports: {http: 9080}\nserviceAccount: reviews\n"},
		{name: "hostname ok", kind: KindWorkloadEntry, valid: true, spec: "address: reviews.example.com\n"},
		{name: "address required", kind: KindWorkloadEntry, spec: "labels: {app: a}\n",
			want: []string{e(5, "spec.address: address is required")}},
		{name: "port range", kind: KindWorkloadEntry, spec: "address: 1.2.3.4\nports: {http: 0}\n",
			want: []string{e(7, "spec.ports[http]: port number 0 must be in the range 1..65535")}},
		{name: "labels", kind: KindWorkloadEntry, spec: "address: 1.2.3.4\nlabels: {\"-bad\": v}\n",
			want: []string{e(7, `spec.labels[-bad]: invalid label key "-bad"`)}},
		{name: "port not a number", kind: KindWorkloadEntry, spec: "address: 1.2.3.4\nports: {http: eighty}\n",
			want: []string{e(7, `spec.ports[http]: expected a non-negative integer, got string "eighty"`)}},
	})
}

// Sidecar and the security kinds are validated as Istio does; all are applied (no
// "not yet applied" note).
func TestValidateSidecarAndSecurityKinds(t *testing.T) {
	runValidationCases(t, []validationCase{
		{name: "sidecar", kind: KindSidecar, valid: true, spec: "egress:\n- hosts: [\"./*\", \"istio-system/*\"]\n"},
		{name: "sidecar empty", kind: KindSidecar, spec: "workloadSelector:\n  labels: {app: a}\n",
			want: []string{"error t.yaml:5: Sidecar default/x: spec: sidecar: empty configuration provided"}},
		{name: "peer authentication", kind: KindPeerAuthentication, valid: true, spec: "mtls: {mode: STRICT}\n"},
		{name: "peer authentication bad mode", kind: KindPeerAuthentication, spec: "mtls: {mode: STRIKT}\n",
			want: []string{`error t.yaml:6: PeerAuthentication default/x: spec.mtls.mode: invalid value "STRIKT", expected one of UNSET, DISABLE, PERMISSIVE, STRICT`}},
		{name: "authorization policy (applied: no info)", kind: KindAuthorizationPolicy, valid: true,
			spec: "action: ALLOW\nrules:\n- from:\n  - source: {principals: [\"cluster.local/ns/default/sa/a\"]}\n"},
		{name: "authorization deny without rules", kind: KindAuthorizationPolicy, spec: "action: DENY\n",
			want: []string{"error t.yaml:5: AuthorizationPolicy default/x: spec.rules: DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request"}},
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
