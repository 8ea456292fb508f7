package webhook

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lucid-mesh/lucid/internal/kube/inject"
	"github.com/lucid-mesh/lucid/internal/kube/selfcert"
)

var testConfig = inject.Config{Image: "ghcr.io/lucid-mesh/lucid:test"}

func testNamespaces() staticNamespaces {
	return staticNamespaces{
		"default":     {"istio-injection": "enabled"},
		"plain":       {},
		"kube-system": {"istio-injection": "enabled"},
	}
}

func jettyPod(ns string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "jetty-7c9f-", Namespace: ns, Labels: map[string]string{"app": "jetty"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "jetty", Image: "jetty:9",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/ok.jsp", Port: intstr.FromString("http")}}},
		}}},
	}
}

// TestInjectOverTLS sends AdmissionReviews over HTTPS and checks what the API server would
// store: the patch applied to the admitted pod.
func TestInjectOverTLS(t *testing.T) {
	s := startServer(t, &Handler{Config: testConfig, Namespaces: testNamespaces(), Log: slog.New(slog.DiscardHandler)}, "127.0.99.10", selfcert.RotatorOptions{})

	badAnnotation := jettyPod("default")
	badAnnotation.Annotations = map[string]string{inject.AnnotationStatusPort: "http"}
	hostNet := jettyPod("default")
	hostNet.Spec.HostNetwork = true

	tests := []struct {
		name        string
		path        string
		pod         *corev1.Pod
		reqNS       string
		wantAllowed bool
		wantInject  bool
		wantMessage string // refusal message
		wantWarning string
		wantEnv     map[string]string // on istio-proxy
	}{
		{name: "labelled namespace", path: "/inject", pod: jettyPod(""), reqNS: "default", wantAllowed: true, wantInject: true},
		{name: "trailing slash", path: "/inject/", pod: jettyPod("default"), reqNS: "default", wantAllowed: true, wantInject: true},
		{name: "path envs", path: "/inject/cluster/c1/net/n1/root/a--slash--b", pod: jettyPod("default"), reqNS: "default", wantAllowed: true, wantInject: true,
			wantEnv: map[string]string{"ISTIO_META_CLUSTER_ID": "c1", "ISTIO_META_NETWORK": "n1", "ROOT": "a/b"}},
		{name: "deprecated :ENV: path", path: "/inject/:ENV:cluster=c2:ENV:net=", pod: jettyPod("default"), reqNS: "default", wantAllowed: true, wantInject: true,
			wantEnv: map[string]string{"ISTIO_META_CLUSTER_ID": "c2", "ISTIO_META_NETWORK": ""}},
		{name: "unlabelled namespace", path: "/inject", pod: jettyPod("plain"), reqNS: "plain", wantAllowed: true},
		{name: "kube-system", path: "/inject", pod: jettyPod("kube-system"), reqNS: "kube-system", wantAllowed: true},
		{name: "hostNetwork", path: "/inject", pod: hostNet, reqNS: "default", wantAllowed: true},
		{name: "namespace unreadable", path: "/inject", pod: jettyPod("broken"), reqNS: "broken", wantAllowed: true, wantInject: true,
			wantWarning: "could not read namespace broken"},
		{name: "invalid annotation refused", path: "/inject", pod: badAnnotation, reqNS: "default",
			wantMessage: `sidecar injection failed: inject: annotation status.sidecar.istio.io/port="http": not a port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ar, raw := s.post(t, tt.path, "application/json", review(t, tt.pod, tt.reqNS))
			if code != 200 {
				t.Fatalf("status %d: %s", code, raw)
			}
			r := ar.Response
			if r == nil || r.UID != "0d0e0a0d-uid" {
				t.Fatalf("response without the request's uid: %s", raw)
			}
			if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" {
				t.Errorf("response TypeMeta %q %q", ar.APIVersion, ar.Kind)
			}
			if r.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v: %s", r.Allowed, tt.wantAllowed, raw)
			}
			if tt.wantMessage != "" && (r.Result == nil || !strings.Contains(r.Result.Message, tt.wantMessage)) {
				t.Fatalf("result = %+v, want message %q", r.Result, tt.wantMessage)
			}
			if tt.wantWarning != "" && !strings.Contains(strings.Join(r.Warnings, "\n"), tt.wantWarning) {
				t.Errorf("warnings %q, want %q", r.Warnings, tt.wantWarning)
			}
			if !tt.wantInject {
				if len(r.Patch) != 0 {
					t.Fatalf("pod patched though it must not be injected: %s", r.Patch)
				}
				return
			}
			if r.PatchType == nil || *r.PatchType != "JSONPatch" {
				t.Fatalf("patchType = %v", r.PatchType)
			}
			stored := applied(t, tt.pod, r.Patch)
			checkInjected(t, stored)
			proxy := container(stored, inject.ProxyContainerName)
			for k, want := range tt.wantEnv {
				if got, ok := envOf(proxy, k); !ok || got != want {
					t.Errorf("istio-proxy env %s = %q (set %v), want %q", k, got, ok, want)
				}
			}
		})
	}
}

func TestAllowOnError(t *testing.T) {
	s := startServer(t, &Handler{Config: testConfig, Namespaces: testNamespaces(), AllowOnError: true}, "127.0.99.11", selfcert.RotatorOptions{})
	pod := jettyPod("default")
	pod.Annotations = map[string]string{inject.AnnotationRewriteProbes: "maybe"}
	_, ar, raw := s.post(t, "/inject", "application/json", review(t, pod, "default"))
	r := ar.Response
	if !r.Allowed || len(r.Patch) != 0 {
		t.Fatalf("want admitted unchanged: %s", raw)
	}
	if w := strings.Join(r.Warnings, "\n"); !strings.Contains(w, "sidecar.istio.io/rewriteAppHTTPProbers") || !strings.Contains(w, "admitted without a sidecar") {
		t.Fatalf("warnings %q do not name the annotation", r.Warnings)
	}
}

// TestBadRequests: transport-level mistakes are HTTP errors naming the problem; a body that
// is not a review is answered with a refusal naming what is wrong.
func TestBadRequests(t *testing.T) {
	s := startServer(t, &Handler{Config: testConfig, MaxBody: 4096}, "127.0.99.12", selfcert.RotatorOptions{})
	tests := []struct {
		name, contentType, body string
		wantCode                int
		want                    string
	}{
		{"wrong content type", "text/plain", `{}`, 415, "invalid Content-Type, want `application/json`"},
		{"empty body", "application/json", ``, 400, "no body found"},
		{"too large", "application/json", strings.Repeat(" ", 5000), 413, "larger than 4096 bytes"},
		{"not JSON", "application/json; charset=utf-8", `{"kind":`, 200, "decode AdmissionReview"},
		{"v1beta1", "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`, 200, "want admission.k8s.io/v1 AdmissionReview"},
		{"no request", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 200, "no request"},
		{"not a pod", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"apps","version":"v1","kind":"Deployment"},"object":{}}}`, 200, "request.kind is apps/v1 Deployment, want Pod"},
		{"pod not an object", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"object":[1]}}`, 200, "decode request.object as a Pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, ar, raw := s.post(t, "/inject", tt.contentType, []byte(tt.body))
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tt.wantCode, raw)
			}
			if code != 200 {
				if !strings.Contains(raw, tt.want) {
					t.Fatalf("body %q, want %q", raw, tt.want)
				}
				return
			}
			if ar.Response.Allowed || ar.Response.Result == nil || !strings.Contains(ar.Response.Result.Message, tt.want) {
				t.Fatalf("response %s, want a refusal with %q", raw, tt.want)
			}
		})
	}
	resp, err := s.client.Get(s.url + "/inject")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET /inject: status %d, want 405", resp.StatusCode)
	}
}

func applied(t *testing.T, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	orig, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	out, err := applyPatch(orig, patch)
	if err != nil {
		t.Fatalf("patch does not apply to the admitted pod: %v\npatch: %s", err, patch)
	}
	var stored corev1.Pod
	if err := json.Unmarshal(out, &stored); err != nil {
		t.Fatal(err)
	}
	return &stored
}

// checkInjected asserts what a user sees on an injected jetty pod.
func checkInjected(t *testing.T, p *corev1.Pod) {
	t.Helper()
	proxy := container(p, inject.ProxyContainerName)
	if proxy == nil {
		t.Fatalf("no %s container: %+v", inject.ProxyContainerName, p.Spec.Containers)
	}
	app := container(p, "jetty")
	lp := app.LivenessProbe
	if lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/app-health/jetty/livez" || lp.HTTPGet.Port.IntValue() != 15020 {
		t.Fatalf("liveness probe not rewritten: %+v", lp)
	}
	probers, ok := envOf(proxy, inject.EnvAppProbers)
	if !ok || !strings.Contains(probers, `"/app-health/jetty/livez"`) || !strings.Contains(probers, `"/ok.jsp"`) || !strings.Contains(probers, `8080`) {
		t.Fatalf("%s = %q", inject.EnvAppProbers, probers)
	}
	if p.Labels["security.istio.io/tlsMode"] != "istio" {
		t.Errorf("labels %v", p.Labels)
	}
}

func container(p *corev1.Pod, name string) *corev1.Container {
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == name {
			return &p.Spec.InitContainers[i]
		}
	}
	return nil
}

func envOf(c *corev1.Container, name string) (string, bool) {
	if c == nil {
		return "", false
	}
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}
