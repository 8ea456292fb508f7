package inject

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

func pod(ns string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns, Labels: labels, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
}

func TestDecide(t *testing.T) {
	m := func(kv ...string) map[string]string {
		out := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	enabled := &Namespace{Name: "shop", Labels: m("istio-injection", "enabled")}
	plain := &Namespace{Name: "shop", Labels: m()}
	hostNet := pod("shop", nil, nil)
	hostNet.Spec.HostNetwork = true
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		ns     *Namespace
		policy Policy
		inject bool
		reason string // substring of the reason when not injected
	}{
		{"labelled namespace", pod("shop", nil, nil), enabled, PolicyEnabled, true, ""},
		{"unlabelled namespace", pod("shop", nil, nil), plain, PolicyEnabled, false, "has no istio-injection=enabled"},
		{"namespace disabled", pod("shop", nil, nil), &Namespace{Name: "shop", Labels: m("istio-injection", "disabled")}, PolicyEnabled, false, "istio-injection=disabled"},
		{"namespace disabled beats pod label", pod("shop", m(LabelInject, "true"), nil), &Namespace{Name: "shop", Labels: m("istio-injection", "disabled")}, PolicyEnabled, false, "istio-injection=disabled"},
		{"namespace revision", pod("shop", nil, nil), &Namespace{Name: "shop", Labels: m("istio.io/rev", "default")}, PolicyEnabled, true, ""},
		{"other revision", pod("shop", nil, nil), &Namespace{Name: "shop", Labels: m("istio.io/rev", "canary")}, PolicyEnabled, false, "not this control plane's revision"},
		{"pod label opts in", pod("shop", m(LabelInject, "true"), nil), plain, PolicyEnabled, true, ""},
		{"pod revision label opts in", pod("shop", m("istio.io/rev", "default"), nil), plain, PolicyEnabled, true, ""},
		{"pod annotation cannot opt in past the selector", pod("shop", nil, m(LabelInject, "true")), plain, PolicyEnabled, false, "has no istio-injection=enabled"},
		{"pod label opts out", pod("shop", m(LabelInject, "false"), nil), enabled, PolicyEnabled, false, `label sidecar.istio.io/inject is "false"`},
		{"pod annotation opts out", pod("shop", nil, m(LabelInject, "false")), enabled, PolicyEnabled, false, `annotation sidecar.istio.io/inject is "false"`},
		{"label wins over annotation (in)", pod("shop", m(LabelInject, "true"), m(LabelInject, "false")), enabled, PolicyEnabled, true, ""},
		{"label wins over annotation (out)", pod("shop", m(LabelInject, "false"), m(LabelInject, "true")), nil, PolicyEnabled, false, `label sidecar.istio.io/inject is "false"`},
		{"other values fall back to policy", pod("shop", m(LabelInject, "yes"), nil), enabled, PolicyEnabled, true, ""},
		{"policy disabled", pod("shop", nil, nil), enabled, PolicyDisabled, false, "policy is disabled"},
		{"policy disabled, pod opts in", pod("shop", m(LabelInject, "true"), nil), enabled, PolicyDisabled, true, ""},
		{"kube-system", pod("kube-system", m(LabelInject, "true"), nil), nil, PolicyEnabled, false, "namespace kube-system is never injected"},
		{"kube-public", pod("kube-public", nil, nil), nil, PolicyEnabled, false, "never injected"},
		{"kube-node-lease", pod("kube-node-lease", nil, nil), nil, PolicyEnabled, false, "never injected"},
		{"local-path-storage", pod("local-path-storage", nil, nil), nil, PolicyEnabled, false, "never injected"},
		{"namespace from the request", pod("", nil, nil), &Namespace{Name: "kube-system", Labels: m("istio-injection", "enabled")}, PolicyEnabled, false, "kube-system"},
		{"hostNetwork", hostNet, enabled, PolicyEnabled, false, "hostNetwork"},
		{"already injected", pod("shop", nil, m(AnnotationStatus, "{}")), enabled, PolicyEnabled, false, "already injected"},
		{"kube-inject ignores namespace labels", pod("shop", nil, nil), nil, PolicyEnabled, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.pod, tc.ns, tc.policy, "default")
			if d.Inject != tc.inject {
				t.Fatalf("Inject = %v (%s), want %v", d.Inject, d.Reason, tc.inject)
			}
			if !tc.inject && !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", d.Reason, tc.reason)
			}
			res, err := Pod(Config{Image: "img", Policy: tc.policy}, Request{Pod: tc.pod, Namespace: tc.ns})
			if err != nil {
				t.Fatal(err)
			}
			if res.Injected != tc.inject || res.Reason != d.Reason {
				t.Errorf("Pod: injected %v reason %q; Decide: %v %q", res.Injected, res.Reason, d.Inject, d.Reason)
			}
			if !tc.inject && res.Pod != tc.pod {
				t.Error("a pod that is not injected must come back unchanged")
			}
		})
	}
}

// TestAppProbersShape checks ISTIO_KUBE_APP_PROBERS against the examples in Istio's
// injector golden files (pkg/kube/inject/testdata): same keys, same JSON, same field order.
func TestAppProbersShape(t *testing.T) {
	http := func(path string, port intstr.IntOrString, scheme corev1.URIScheme) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, Scheme: scheme}}}
	}
	svc := "foo"
	for _, tc := range []struct {
		name string
		c    corev1.Container
		want string
	}{
		{"http and https", corev1.Container{Name: "hello",
			LivenessProbe:  http("", intstr.FromInt32(80), ""),
			ReadinessProbe: http("", intstr.FromInt32(3333), corev1.URISchemeHTTPS)},
			`{"/app-health/hello/livez":{"httpGet":{"port":80}},"/app-health/hello/readyz":{"httpGet":{"port":3333,"scheme":"HTTPS"}}}`},
		{"path", corev1.Container{Name: "hello", ReadinessProbe: http("/ip", intstr.FromInt32(8000), "")},
			`{"/app-health/hello/readyz":{"httpGet":{"path":"/ip","port":8000}}}`},
		{"tcp", corev1.Container{Name: "hello", LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}},
			`{"/app-health/hello/livez":{"tcpSocket":{"port":80}}}`},
		{"grpc", corev1.Container{Name: "foo", LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 1234}}}},
			`{"/app-health/foo/livez":{"grpc":{"port":1234,"service":null}}}`},
		{"grpc service, timeout, prestop with host", corev1.Container{Name: "foo",
			StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 1234, Service: &svc}}, TimeoutSeconds: 10},
			Lifecycle:    &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/foo", Port: intstr.FromInt32(1234), Host: "foo", Scheme: corev1.URISchemeHTTP}}}},
			`{"/app-health/foo/startupz":{"grpc":{"port":1234,"service":"foo"},"timeoutSeconds":10},"/app-lifecycle/foo/prestopz":{"httpGet":{"path":"/foo","port":1234,"host":"foo","scheme":"HTTP"}}}`},
		{"hooks", corev1.Container{Name: "hello", Lifecycle: &corev1.Lifecycle{
			PostStart: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(93)}},
			PreStop:   &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(91)}}}},
			`{"/app-lifecycle/hello/poststartz":{"tcpSocket":{"port":93}},"/app-lifecycle/hello/prestopz":{"httpGet":{"port":91}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{Containers: []corev1.Container{tc.c}}}
			res, err := Pod(Config{Image: "img"}, Request{Pod: p})
			if err != nil || !res.Injected {
				t.Fatalf("not injected: %v %s", err, res.Reason)
			}
			if got := proxyEnv(t, res.Pod, EnvAppProbers); got != tc.want {
				t.Errorf("ISTIO_KUBE_APP_PROBERS\n got %s\nwant %s", got, tc.want)
			}
			app := res.Pod.Spec.Containers[0]
			for _, pr := range []*corev1.Probe{app.LivenessProbe, app.ReadinessProbe, app.StartupProbe} {
				if pr == nil {
					continue
				}
				if pr.HTTPGet == nil || pr.TCPSocket != nil || pr.GRPC != nil || pr.HTTPGet.Port.IntVal != 15020 ||
					!strings.HasPrefix(pr.HTTPGet.Path, "/app-health/"+tc.c.Name+"/") || pr.HTTPGet.Scheme == corev1.URISchemeHTTPS {
					t.Errorf("probe not rewritten to the status port: %+v", pr.ProbeHandler)
				}
			}
		})
	}
}

func proxyEnv(t *testing.T, p *corev1.Pod, name string) string {
	t.Helper()
	c := findProxy(p)
	if c == nil {
		t.Fatal("no istio-proxy container")
	}
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func TestPrometheusMerge(t *testing.T) {
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		env         string
		port        string
	}{
		{"no annotations", nil, "", "15020"},
		{"app annotations move to env", map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9080", "prometheus.io/path": "/metrics"},
			`{"scrape":"true","path":"/metrics","port":"9080"}`, "15020"},
		{"variant spelling", map[string]string{"prometheus_io/port": "9100"}, `{"scrape":"","path":"","port":"9100"}`, "15020"},
		{"scrape false: untouched", map[string]string{"prometheus.io/scrape": "false", "prometheus.io/port": "9080"}, "", "9080"},
		{"merge off by annotation", map[string]string{"prometheus.istio.io/merge-metrics": "false", "prometheus.io/port": "9080"}, "", "9080"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Pod(Config{Image: "img"}, Request{Pod: pod("default", nil, tc.annotations)})
			if err != nil {
				t.Fatal(err)
			}
			if got := proxyEnv(t, res.Pod, EnvPrometheus); got != tc.env {
				t.Errorf("%s = %q, want %q", EnvPrometheus, got, tc.env)
			}
			if got := res.Pod.Annotations["prometheus.io/port"]; got != tc.port {
				t.Errorf("prometheus.io/port = %q, want %q", got, tc.port)
			}
			if _, ok := res.Pod.Annotations["prometheus_io/port"]; ok {
				t.Error("variant annotation not cleared")
			}
		})
	}
}

func TestInvalidAnnotations(t *testing.T) {
	for _, tc := range []struct{ annotation, value string }{
		{AnnotationStatusPort, "http"},
		{AnnotationRewriteProbes, "maybe"},
		{AnnotationReadinessPeriod, "-1"},
		{AnnotationInterceptionMode, "EBPF"},
		{AnnotationIncludeInboundPorts, "80,http"},
		{AnnotationExcludeOutboundIPs, "10.0.0.0/33"},
		{AnnotationIncludeOutboundIPs, "everything"},
		{AnnotationProxyMemory, "lots"},
		{AnnotationProxyConfig, "holdApplicationUntilProxyStarts: [1"},
	} {
		t.Run(tc.annotation, func(t *testing.T) {
			_, err := Pod(Config{Image: "img"}, Request{Pod: pod("default", nil, map[string]string{tc.annotation: tc.value})})
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.annotation, tc.value)
			}
			if !strings.Contains(err.Error(), tc.value) {
				t.Errorf("error %q does not quote the bad value %q", err, tc.value)
			}
		})
	}
}

func TestWorkloadName(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		want string
	}{
		{"bare pod", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "solo"}}, "solo"},
		{"deployment", corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "reviews-v1-5f8c7-", Labels: map[string]string{"pod-template-hash": "5f8c7"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "reviews-v1-5f8c7", Controller: &yes}}}}, "reviews-v1"},
		{"cronjob", corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "report-28730160-",
			OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "report-28730160", Controller: &yes}}}}, "report"},
		{"statefulset", corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "db-0", GenerateName: "db-",
			OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "db", Controller: &yes}}}}, "db"},
		{"webhook sees no name yet", corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "loner-"}}, "loner"},
	} {
		if got := workloadName(&tc.pod); got != tc.want {
			t.Errorf("%s: workloadName = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestInputNotModified(t *testing.T) {
	p := pod("default", map[string]string{"app": "a"}, map[string]string{"prometheus.io/port": "9"})
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}
	before, _ := yaml.Marshal(p)
	if _, err := Pod(Config{Image: "img"}, Request{Pod: p}); err != nil {
		t.Fatal(err)
	}
	after, _ := yaml.Marshal(p)
	if string(before) != string(after) {
		t.Errorf("the request's pod was modified:\n%s", lineDiff(string(before), string(after)))
	}
}

// FuzzInject: any YAML stream must come back injected, passed through or refused with an
// error, never a panic; and what was injected must not be injected again.
func FuzzInject(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, livenessProbe: {httpGet: {port: x}}}]}\n",
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: {spec: {containers: [{name: c, ports: [{name: x, containerPort: 1}], readinessProbe: {tcpSocket: {port: x}}}]}}}\n",
		"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: j}\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c}]}}}}}\n",
		"---\n---\n# only a comment\n",
		"kind: Pod\nmetadata: {annotations: {status.sidecar.istio.io/port: '0', traffic.sidecar.istio.io/includeInboundPorts: ''}}\n",
		"apiVersion: v1\nkind: Pod\nspec: {initContainers: [{name: istio-init}], hostNetwork: true}\n",
		"[1, 2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := Manifests(Config{Image: "img"}, in)
		if err != nil {
			return
		}
		again, reports, err := Manifests(Config{Image: "img"}, out)
		if err != nil {
			t.Fatalf("injected output does not parse again: %v\n%s", err, out)
		}
		for _, r := range reports {
			if r.Injected {
				t.Fatalf("%s injected twice:\n%s\n---- became\n%s", r.Object, out, again)
			}
		}
	})
}

// The sidecar asks the CA for an identity in the mesh's trust domain: a meshConfig
// trustDomain other than cluster.local reaches the agent's flags; the default adds
// nothing, and a plaintext discovery address (no identity) none either.
func TestTrustDomainArg(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" → no --trust-domain
	}{
		{"default", Config{Image: "img"}, ""},
		{"cluster.local named", Config{Image: "img", TrustDomain: "cluster.local"}, ""},
		{"custom", Config{Image: "img", TrustDomain: "example.org"}, "example.org"},
		{"plaintext discovery", Config{Image: "img", TrustDomain: "example.org", DiscoveryAddress: "lucid-discovery.istio-system.svc:15010"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Pod(tc.cfg, Request{Pod: pod("default", nil, nil)})
			if err != nil {
				t.Fatal(err)
			}
			args := findProxy(res.Pod).Args
			got := ""
			for i, a := range args {
				if a == "--trust-domain" && i+1 < len(args) {
					got = args[i+1]
				}
			}
			if got != tc.want {
				t.Errorf("--trust-domain %q in %q, want %q", got, args, tc.want)
			}
		})
	}
}
