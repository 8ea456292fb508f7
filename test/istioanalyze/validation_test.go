package istioanalyze

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	istioconfig "istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/validation"
	"istio.io/istio/pkg/util/protomarshal"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// The validation corpus: valid base objects of every kind Lucid validates, and every
// object one mutation away from a base (each field unset, set to each of a set of
// interesting values, lists and maps emptied, grown and repeated). Lucid (config.Parse) and
// Istio (pkg/config/validation, the webhook's functions) must agree on each: rejected or
// accepted.

type validationKind struct {
	group    string
	newSpec  func() proto.Message
	validate validation.ValidateFunc
}

var validationKinds = map[string]validationKind{
	"VirtualService":        {"networking.istio.io/v1", func() proto.Message { return &networking.VirtualService{} }, validation.ValidateVirtualService},
	"DestinationRule":       {"networking.istio.io/v1", func() proto.Message { return &networking.DestinationRule{} }, validation.ValidateDestinationRule},
	"Gateway":               {"networking.istio.io/v1", func() proto.Message { return &networking.Gateway{} }, validation.ValidateGateway},
	"ServiceEntry":          {"networking.istio.io/v1", func() proto.Message { return &networking.ServiceEntry{} }, validation.ValidateServiceEntry},
	"WorkloadEntry":         {"networking.istio.io/v1", func() proto.Message { return &networking.WorkloadEntry{} }, validation.ValidateWorkloadEntry},
	"Sidecar":               {"networking.istio.io/v1", func() proto.Message { return &networking.Sidecar{} }, validation.ValidateSidecar},
	"PeerAuthentication":    {"security.istio.io/v1", func() proto.Message { return &security.PeerAuthentication{} }, validation.ValidatePeerAuthentication},
	"AuthorizationPolicy":   {"security.istio.io/v1", func() proto.Message { return &security.AuthorizationPolicy{} }, validation.ValidateAuthorizationPolicy},
	"RequestAuthentication": {"security.istio.io/v1", func() proto.Message { return &security.RequestAuthentication{} }, validation.ValidateRequestAuthentication},
}

// validationBases are valid objects that use most fields of their kind.
var validationBases = []struct{ name, kind, spec string }{
	{"vs-http", "VirtualService", `
hosts: [reviews, reviews.example.com]
gateways: [mesh, istio-system/ingress]
exportTo: ['.', 'istio-system']
http:
- name: primary
  match:
  - name: m1
    uri: {prefix: /api}
    method: {exact: GET}
    headers: {x-user: {exact: jason}, x-re: {regex: 'a.*'}}
    queryParams: {debug: {exact: "1"}}
    withoutHeaders: {x-skip: {prefix: "y"}}
    port: 9080
    sourceLabels: {app: productpage}
    sourceNamespace: default
    ignoreUriCase: true
    authority: {prefix: reviews}
    scheme: {exact: http}
    gateways: [mesh]
  route:
  - destination: {host: reviews, subset: v1, port: {number: 9080}}
    weight: 80
    headers: {request: {set: {x-a: b}, add: {x-c: d}, remove: [x-e]}, response: {set: {x-f: g}}}
  - destination: {host: reviews, subset: v2}
    weight: 20
  timeout: 5s
  retries: {attempts: 3, perTryTimeout: 1s, retryOn: "5xx,connect-failure", retryRemoteLocalities: true}
  fault:
    delay: {percentage: {value: 10}, fixedDelay: 1s}
    abort: {percentage: {value: 5}, httpStatus: 503}
  mirror: {host: reviews, subset: v3}
  mirrorPercentage: {value: 50}
  corsPolicy:
    allowOrigins: [{exact: https://example.com}]
    allowMethods: [GET, POST]
    allowHeaders: [x-a]
    exposeHeaders: [x-b]
    maxAge: 24h
    allowCredentials: true
  rewrite: {uri: /v1}
  headers: {request: {set: {x-g: h}}}
- route:
  - destination: {host: ratings}
`},
	{"vs-redirect", "VirtualService", `
hosts: [old.example.com]
http:
- match:
  - uri: {exact: /old}
  redirect: {uri: /new, authority: new.example.com, redirectCode: 301, scheme: https, port: 8443}
- match:
  - uri: {prefix: /gone}
  directResponse: {status: 410, body: {string: gone}}
- route:
  - destination: {host: old.example.com}
`},
	{"vs-delegate", "VirtualService", `
http:
- match:
  - uri: {prefix: /a}
  route:
  - destination: {host: a}
`},
	{"vs-root", "VirtualService", `
hosts: [root.example.com]
http:
- match:
  - uri: {prefix: /a}
  delegate: {name: a, namespace: default}
`},
	{"vs-tcp-tls", "VirtualService", `
hosts: [db.example.com, '*.tls.example.com']
tcp:
- match:
  - port: 5432
    destinationSubnets: [10.0.0.0/8]
    sourceLabels: {app: api}
  route:
  - destination: {host: db.example.com, port: {number: 5432}}
tls:
- match:
  - sniHosts: [a.tls.example.com]
    port: 443
  route:
  - destination: {host: a.tls.example.com, port: {number: 443}}
`},
	{"dr", "DestinationRule", `
host: reviews.default.svc.cluster.local
exportTo: ['*']
trafficPolicy:
  loadBalancer:
    simple: LEAST_REQUEST
    warmup: {duration: 60s, minimumPercent: 10, aggression: 1.5}
    localityLbSetting:
      enabled: true
      failover: [{from: us-east, to: us-west}]
  connectionPool:
    tcp: {maxConnections: 100, connectTimeout: 10s, tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}}
    http: {http1MaxPendingRequests: 10, http2MaxRequests: 100, maxRequestsPerConnection: 10, maxRetries: 3, idleTimeout: 1h, h2UpgradePolicy: UPGRADE}
  outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50, minHealthPercent: 10}
  tls: {mode: ISTIO_MUTUAL}
  portLevelSettings:
  - port: {number: 9080}
    loadBalancer: {consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 1024}}}
    tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, sni: reviews.example.com, subjectAltNames: [reviews]}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
- name: v2
  labels: {version: v2}
`},
	{"dr-hash", "DestinationRule", `
host: ratings
trafficPolicy:
  loadBalancer:
    consistentHash:
      httpCookie: {name: session, ttl: 60s, path: /}
      maglev: {tableSize: 65537}
`},
	{"dr-selector", "DestinationRule", `
host: ratings.default.svc.cluster.local
workloadSelector: {matchLabels: {app: productpage}}
trafficPolicy:
  tls: {mode: MUTUAL, credentialName: client-cert}
`},
	{"gw", "Gateway", `
selector: {istio: ingressgateway}
servers:
- port: {number: 80, name: http, protocol: HTTP}
  hosts: [bookinfo.example.com, 'default/reviews.example.com', '*/any.example.com']
  tls: {httpsRedirect: true}
- port: {number: 443, name: https, protocol: HTTPS}
  hosts: [bookinfo.example.com]
  tls: {mode: SIMPLE, credentialName: bookinfo-cert, minProtocolVersion: TLSV1_2, cipherSuites: [ECDHE-ECDSA-AES256-GCM-SHA384]}
- port: {number: 8443, name: mtls, protocol: HTTPS}
  hosts: ['*.example.com']
  tls: {mode: MUTUAL, serverCertificate: /etc/cert.pem, privateKey: /etc/key.pem, caCertificates: /etc/ca.pem, subjectAltNames: [client]}
- port: {number: 9443, name: tls-passthrough, protocol: TLS}
  hosts: [passthrough.example.com]
  tls: {mode: PASSTHROUGH}
- port: {number: 31400, name: tcp, protocol: TCP}
  hosts: ['*']
  bind: 0.0.0.0
`},
	{"se-static", "ServiceEntry", `
hosts: [vm.example.com]
addresses: [10.1.1.1]
location: MESH_INTERNAL
resolution: STATIC
ports:
- {number: 80, name: http, protocol: HTTP, targetPort: 8080}
- {number: 443, name: https, protocol: HTTPS}
endpoints:
- address: 10.1.1.2
  ports: {http: 8080}
  labels: {app: vm, version: v1}
  locality: us-east/zone1
  weight: 10
  serviceAccount: vm-sa
exportTo: ['.']
subjectAltNames: [spiffe://cluster.local/ns/default/sa/vm]
`},
	{"se-unix", "ServiceEntry", `
hosts: [local.example.com]
location: MESH_INTERNAL
resolution: STATIC
ports:
- {number: 80, name: http, protocol: HTTP}
endpoints:
- address: unix:///var/run/app.sock
`},
	{"se-dns", "ServiceEntry", `
hosts: [api.example.com, '*.wild.example.com']
location: MESH_EXTERNAL
resolution: DNS
ports:
- {number: 443, name: tls, protocol: TLS}
endpoints:
- address: api.example.com
`},
	{"se-selector", "ServiceEntry", `
hosts: [vms.example.com]
location: MESH_INTERNAL
resolution: STATIC
workloadSelector: {labels: {app: vm}}
ports:
- {number: 80, name: http, protocol: HTTP}
`},
	{"we", "WorkloadEntry", `
address: 10.0.0.1
ports: {http: 8080, grpc: 9090}
labels: {app: vm, version: v1}
network: net1
locality: us-east/zone1/sub
weight: 5
serviceAccount: vm-sa
`},
	{"sidecar", "Sidecar", `
workloadSelector: {labels: {app: reviews}}
ingress:
- port: {number: 9080, protocol: HTTP, name: http}
  defaultEndpoint: 127.0.0.1:8080
  captureMode: DEFAULT
egress:
- port: {number: 3306, protocol: MYSQL, name: mysql}
  hosts: ['./mysql.example.com']
- hosts: ['./*', 'istio-system/*']
outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`},
	{"pa", "PeerAuthentication", `
selector: {matchLabels: {app: reviews}}
mtls: {mode: STRICT}
portLevelMtls:
  9080: {mode: PERMISSIVE}
`},
	{"ap-allow", "AuthorizationPolicy", `
selector: {matchLabels: {app: reviews}}
action: ALLOW
rules:
- from:
  - source: {principals: [cluster.local/ns/default/sa/productpage], requestPrincipals: ['*'], notIpBlocks: [10.0.0.0/8]}
  - source: {namespaces: [default], ipBlocks: [192.168.0.0/16], remoteIpBlocks: [1.2.3.4]}
  to:
  - operation: {methods: [GET], paths: [/api/*], ports: ['9080'], hosts: [reviews.example.com], notPaths: [/admin]}
  when:
  - {key: 'request.auth.claims[group]', values: [admin]}
  - {key: source.ip, values: [10.0.0.1]}
`},
	{"ap-deny", "AuthorizationPolicy", `
action: DENY
rules:
- from:
  - source: {serviceAccounts: [default/productpage]}
`},
	{"ap-custom", "AuthorizationPolicy", `
action: CUSTOM
provider: {name: ext-authz}
rules:
- to:
  - operation: {paths: [/admin]}
`},
	{"ra", "RequestAuthentication", `
selector: {matchLabels: {app: reviews}}
jwtRules:
- issuer: https://issuer.example.com
  jwksUri: https://issuer.example.com/jwks
  audiences: [reviews]
  fromHeaders: [{name: x-jwt, prefix: 'Bearer '}]
  fromParams: [token]
  fromCookies: [session]
  outputPayloadToHeader: x-payload
- issuer: https://inline.example.com
  jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1"}]}'

  outputClaimToHeaders: [{header: x-group, claim: group}]
  forwardOriginalToken: true
  timeout: 5s
`},
}

// mutation is one object of the corpus: a base with one change.
type mutation struct {
	base, kind, what string
	spec             proto.Message
}

func validationCorpus(t *testing.T) []mutation {
	t.Helper()
	var out []mutation
	for _, b := range validationBases {
		k := validationKinds[b.kind]
		spec := k.newSpec()
		if err := protomarshal.ApplyYAMLStrict(b.spec, spec); err != nil {
			t.Fatalf("base %s: %v", b.name, err)
		}
		out = append(out, mutation{b.name, b.kind, "(base)", spec})
		for _, m := range mutate(spec) {
			out = append(out, mutation{b.name, b.kind, m.what, m.spec})
		}
	}
	return out
}

type mutant struct {
	what string
	spec proto.Message
}

// Interesting values by field kind.
var (
	interestingStrings = []string{"", "*", "x*", "*.example.com", "Bad_Name", "UPPER.example.com", "a/b", "./x", "*/x", "1.2.3.4",
		"10.0.0.0/33", "::1", "unix:///var/run/s.sock", "unix:///var/run/", "unix://relative", "@abstract", "http://example.com:x/",
		"-", ".", "~", "x.example.com", "GET", "a b", "x-header", strings.Repeat("a", 300)}
	interestingInts    = []int64{0, 1, -1, 100, 101, 65535, 65536, 4294967295}
	interestingFloats  = []float64{0, -1, 100.5, 101}
	interestingSeconds = []struct{ s, n int64 }{{0, 0}, {-1, 0}, {0, 500000}, {0, 1000000}, {3600, 0}}
)

// mutate returns every mutant one change away from spec.
func mutate(spec proto.Message) []mutant {
	var out []mutant
	add := func(what string, change func(m protoreflect.Message)) {
		c := proto.Clone(spec)
		change(c.ProtoReflect())
		out = append(out, mutant{what, c})
	}
	walk(spec.ProtoReflect(), nil, add)
	return out
}

// step navigates from a message to a child message: a field, and for lists and maps an
// element.
type step struct {
	fd    protoreflect.FieldDescriptor
	index int                 // lists
	key   protoreflect.MapKey // maps
}

func follow(m protoreflect.Message, path []step) protoreflect.Message {
	for _, s := range path {
		switch {
		case s.fd.IsList():
			m = m.Mutable(s.fd).List().Get(s.index).Message()
		case s.fd.IsMap():
			m = m.Mutable(s.fd).Map().Mutable(s.key).Message()
		default:
			m = m.Mutable(s.fd).Message()
		}
	}
	return m
}

func pathString(path []step, fd protoreflect.FieldDescriptor) string {
	var b strings.Builder
	for _, s := range path {
		b.WriteString("." + s.fd.JSONName())
		switch {
		case s.fd.IsList():
			fmt.Fprintf(&b, "[%d]", s.index)
		case s.fd.IsMap():
			fmt.Fprintf(&b, "[%v]", s.key.Interface())
		}
	}
	return b.String() + "." + fd.JSONName()
}

func walk(m protoreflect.Message, path []step, add func(string, func(protoreflect.Message))) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Struct" {
			continue
		}
		name := pathString(path, fd)
		p := slices.Clone(path)
		at := func(change func(parent protoreflect.Message)) func(protoreflect.Message) {
			return func(root protoreflect.Message) { change(follow(root, p)) }
		}
		if m.Has(fd) {
			add(name+" unset", at(func(pm protoreflect.Message) { pm.Clear(fd) }))
		}
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			if l.Len() > 0 {
				add(name+" empty", at(func(pm protoreflect.Message) { pm.Set(fd, pm.NewField(fd)) }))
				add(name+" first repeated", at(func(pm protoreflect.Message) {
					pl := pm.Mutable(fd).List()
					pl.Append(cloneValue(fd, pl.Get(0)))
				}))
				if fd.Message() != nil {
					for j := range l.Len() {
						walk(l.Get(j).Message(), append(slices.Clone(path), step{fd: fd, index: j}), add)
					}
				} else {
					for _, v := range scalarValues(fd) {
						add(fmt.Sprintf("%s[0]=%v", name, v.Interface()), at(func(pm protoreflect.Message) { pm.Mutable(fd).List().Set(0, v) }))
					}
				}
			}
			add(name+" zero element added", at(func(pm protoreflect.Message) {
				pl := pm.Mutable(fd).List()
				pl.Append(pl.NewElement())
			}))
		case fd.IsMap():
			mp := m.Get(fd).Map()
			if mp.Len() > 0 {
				add(name+" empty", at(func(pm protoreflect.Message) { pm.Set(fd, pm.NewField(fd)) }))
				var keys []protoreflect.MapKey
				mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool { keys = append(keys, k); return true })
				slices.SortFunc(keys, func(a, b protoreflect.MapKey) int {
					return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
				})
				first := keys[0]
				for _, k := range mapKeys(fd.MapKey()) {
					add(fmt.Sprintf("%s key %v added", name, k.Interface()), at(func(pm protoreflect.Message) {
						pmp := pm.Mutable(fd).Map()
						pmp.Set(k, cloneValue(fd.MapValue(), pmp.Get(first)))
					}))
				}
				if fd.MapValue().Message() != nil {
					walk(mp.Get(first).Message(), append(slices.Clone(path), step{fd: fd, key: first}), add)
				} else {
					for _, v := range scalarValues(fd.MapValue()) {
						add(fmt.Sprintf("%s[%v]=%v", name, first.Interface(), v.Interface()), at(func(pm protoreflect.Message) { pm.Mutable(fd).Map().Set(first, v) }))
					}
				}
			} else {
				add(name+" empty map", at(func(pm protoreflect.Message) { pm.Set(fd, pm.NewField(fd)) }))
			}
		case fd.Message() != nil:
			switch fd.Message().FullName() {
			case "google.protobuf.Duration":
				for _, d := range interestingSeconds {
					add(fmt.Sprintf("%s=%ds%dns", name, d.s, d.n), at(func(pm protoreflect.Message) {
						dm := pm.NewField(fd).Message()
						dm.Set(dm.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(d.s))
						dm.Set(dm.Descriptor().Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(d.n)))
						pm.Set(fd, protoreflect.ValueOfMessage(dm))
					}))
				}
			case "google.protobuf.UInt32Value", "google.protobuf.Int32Value", "google.protobuf.DoubleValue", "google.protobuf.BoolValue",
				"google.protobuf.StringValue", "google.protobuf.UInt64Value", "google.protobuf.Int64Value", "google.protobuf.FloatValue":
				inner := fd.Message().Fields().ByName("value")
				for _, v := range scalarValues(inner) {
					add(fmt.Sprintf("%s=%v", name, v.Interface()), at(func(pm protoreflect.Message) {
						wm := pm.NewField(fd).Message()
						wm.Set(inner, v)
						pm.Set(fd, protoreflect.ValueOfMessage(wm))
					}))
				}
			default:
				if m.Has(fd) {
					walk(m.Get(fd).Message(), append(slices.Clone(path), step{fd: fd}), add)
				} else {
					add(name+" empty message", at(func(pm protoreflect.Message) { pm.Set(fd, pm.NewField(fd)) }))
				}
			}
		default:
			for _, v := range scalarValues(fd) {
				add(fmt.Sprintf("%s=%v", name, v.Interface()), at(func(pm protoreflect.Message) { pm.Set(fd, v) }))
			}
		}
	}
}

func cloneValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	if fd.Message() != nil {
		return protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect())
	}
	return v
}

func scalarValues(fd protoreflect.FieldDescriptor) []protoreflect.Value {
	var out []protoreflect.Value
	switch fd.Kind() {
	case protoreflect.StringKind:
		for _, s := range interestingStrings {
			out = append(out, protoreflect.ValueOfString(s))
		}
	case protoreflect.BoolKind:
		out = append(out, protoreflect.ValueOfBool(true), protoreflect.ValueOfBool(false))
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		for i := range vals.Len() {
			out = append(out, protoreflect.ValueOfEnum(vals.Get(i).Number()))
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		for _, n := range interestingInts {
			if n >= -1<<31 && n < 1<<31 {
				out = append(out, protoreflect.ValueOfInt32(int32(n)))
			}
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		for _, n := range interestingInts {
			out = append(out, protoreflect.ValueOfInt64(n))
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		for _, n := range interestingInts {
			if n >= 0 {
				out = append(out, protoreflect.ValueOfUint32(uint32(n)))
			}
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		for _, n := range interestingInts {
			if n >= 0 {
				out = append(out, protoreflect.ValueOfUint64(uint64(n)))
			}
		}
	case protoreflect.DoubleKind:
		for _, f := range interestingFloats {
			out = append(out, protoreflect.ValueOfFloat64(f))
		}
	case protoreflect.FloatKind:
		for _, f := range interestingFloats {
			out = append(out, protoreflect.ValueOfFloat32(float32(f)))
		}
	}
	return out
}

func mapKeys(fd protoreflect.FieldDescriptor) []protoreflect.MapKey {
	var out []protoreflect.MapKey
	for _, v := range scalarValues(fd) {
		out = append(out, v.MapKey())
	}
	return out
}

// lucidParse parses the object as `lucid up` and the control plane do.
func lucidParse(kind string, spec proto.Message) []config.Diagnostic {
	js, err := protojson.Marshal(spec)
	if err != nil {
		panic(err)
	}
	doc := fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata: {name: test, namespace: default}\nspec: %s\n", validationKinds[kind].group, kind, js)
	_, diags := config.Parse("x.yaml", []byte(doc))
	return diags
}

// lucidRejects reports Lucid's errors.
func lucidRejects(kind string, spec proto.Message) (bool, string) {
	diags := lucidParse(kind, spec)
	var errs []string
	for _, d := range diags {
		if d.Level == config.Error {
			errs = append(errs, d.Field+": "+d.Message)
		}
	}
	return len(errs) > 0, strings.Join(errs, "; ")
}

// istioRejects runs Istio's validation function for the kind.
func istioRejects(kind string, spec proto.Message) (bool, string) {
	_, err := validationKinds[kind].validate(istioconfig.Config{
		Meta: istioconfig.Meta{Name: "test", Namespace: "default"},
		Spec: proto.Clone(spec),
	})
	if err != nil {
		return true, err.Error()
	}
	return false, ""
}

// TestValidationWarningParity: where both accept an object, they warn about the same ones.
func TestValidationWarningParity(t *testing.T) {
	var diffs []string
	for _, m := range validationCorpus(t) {
		if r, _ := lucidRejects(m.kind, m.spec); r {
			continue
		}
		lw, lmsg := lucidWarns(m.kind, m.spec)
		w, _ := validationKinds[m.kind].validate(istioconfig.Config{Meta: istioconfig.Meta{Name: "test", Namespace: "default"}, Spec: proto.Clone(m.spec)})
		iw := w != nil && slices.ContainsFunc(strings.Split(w.Error(), "\n"), func(l string) bool {
			// Unreachable rules are analysis messages in Lucid (IST0130, IST0131), checked by TestAnalyzeParity.
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
			return l != "" && !strings.HasPrefix(l, "virtualService rule") && !strings.HasSuffix(l, "errors occurred:")
		})
		if iw != lw {
			diffs = append(diffs, fmt.Sprintf("%s %s: Lucid warns %v (%s), Istio %v", m.base, m.what, lw, lmsg, w))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d disagreements:\n  %s", len(diffs), strings.Join(diffs, "\n  "))
	}
}

// lucidWarns reports Lucid's warnings that are Istio's (not Lucid's own).
func lucidWarns(kind string, spec proto.Message) (bool, string) {
	diags := lucidParse(kind, spec)
	var ws []string
	for _, d := range diags {
		if d.Level == config.Warning && !d.Lucid {
			ws = append(ws, d.Field+": "+d.Message)
		}
	}
	return len(ws) > 0, strings.Join(ws, "; ")
}

// TestValidationParity checks every object of the corpus.
func TestValidationParity(t *testing.T) {
	corpus := validationCorpus(t)
	counts := map[string]int{}
	var diffs []string
	for _, m := range corpus {
		li, lmsg := lucidRejects(m.kind, m.spec)
		ii, imsg := istioRejects(m.kind, m.spec)
		if li == ii {
			counts[fmt.Sprint("agree rejected=", li)]++
			continue
		}
		key := m.base + " " + m.what
		if reason := knownValidationDeviation(m.base, m.what); reason != "" {
			counts["known deviation"]++
			continue
		}
		if ii {
			diffs = append(diffs, fmt.Sprintf("Lucid accepts, Istio rejects: %s\n      istio: %s", key, imsg))
		} else {
			diffs = append(diffs, fmt.Sprintf("Lucid rejects, Istio accepts: %s\n      lucid: %s", key, lmsg))
		}
	}
	t.Logf("%d objects: %v", len(corpus), counts)
	if len(diffs) > 0 {
		t.Errorf("%d disagreements:\n  %s", len(diffs), strings.Join(diffs, "\n  "))
	}
}

// knownValidationDeviations are where Lucid deliberately differs, by base and mutation
// (a prefix of the mutation's description), with the reason.
var knownValidationDeviations = map[string]string{}

func knownValidationDeviation(base, what string) string {
	for _, k := range slices.Sorted(maps.Keys(knownValidationDeviations)) {
		b, w, _ := strings.Cut(k, " ")
		if (b == "*" || b == base) && strings.HasPrefix(what, w) {
			return knownValidationDeviations[k]
		}
	}
	return ""
}
