package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lucid-mesh/lucid/internal/kube/inject"
)

// Defaults of Handler.
const (
	// DefaultMaxBody bounds an AdmissionReview body. The API server's own request limit is
	// 3 MiB and an object is at most 1.5 MiB in etcd; a review carries the object once
	// (twice for updates).
	DefaultMaxBody = 6 << 20
	// DefaultNamespaceTimeout bounds the namespace read of one admission (the API server
	// waits 10 s for the whole webhook call by default).
	DefaultNamespaceTimeout = 3 * time.Second
)

// NamespaceLabels reads a namespace's labels.
type NamespaceLabels interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// Handler serves AdmissionReview v1 on /inject and /inject/... (Istio's paths; the path
// after /inject/ may carry proxy environment variables as key/value segments, e.g.
// /inject/cluster/c1/net/n1).
type Handler struct {
	Config inject.Config
	// Namespaces reads the pod's namespace labels for the selection rules. nil, or a
	// failed read, leaves the namespace selectors to the API server (the webhook
	// configuration's namespaceSelector already applied them) and adds a warning.
	Namespaces NamespaceLabels
	// AllowOnError admits a pod unchanged, with a warning, when injecting it fails (an
	// invalid annotation, an undecodable pod). The default is Istio's: the pod is refused
	// with the error (the installed webhook's failurePolicy is Fail, so an unreachable
	// injector refuses it too).
	AllowOnError     bool
	MaxBody          int64         // default DefaultMaxBody
	NamespaceTimeout time.Duration // default DefaultNamespaceTimeout
	Log              *slog.Logger
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// ServeHTTP answers one admission request. Transport-level problems (method, size,
// content type, empty body) are HTTP errors; everything after a review was read is an
// AdmissionReview response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.log().With("path", r.URL.Path)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the injector takes POST (an AdmissionReview)", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		log.Warn("admission request refused", "error", "Content-Type "+r.Header.Get("Content-Type"))
		http.Error(w, "invalid Content-Type, want `application/json`", http.StatusUnsupportedMediaType)
		return
	}
	maxBody := h.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			log.Warn("admission request refused", "error", "body too large", "limit", maxBody)
			http.Error(w, fmt.Sprintf("AdmissionReview larger than %d bytes", maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		log.Warn("admission request: reading the body failed", "error", err)
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) == 0 {
		http.Error(w, "no body found", http.StatusBadRequest)
		return
	}

	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: reviewAPIVersion, Kind: "AdmissionReview"}}
	ar, err := DecodeReview(body)
	if err != nil {
		log.Warn("admission request refused", "error", err)
		out.Response = &admissionv1.AdmissionResponse{Result: &metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}}
	} else {
		out.Response = h.admit(r.Context(), ar.Request, r.URL.Path, log)
		out.Response.UID = ar.Request.UID
	}
	resp, err := json.Marshal(out)
	if err != nil {
		log.Error("encode admission response", "error", err)
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(resp)
}

// admit decides one request.
func (h *Handler) admit(ctx context.Context, req *admissionv1.AdmissionRequest, path string, log *slog.Logger) *admissionv1.AdmissionResponse {
	pod, err := DecodePod(req)
	if err != nil {
		return h.failed(log.With("namespace", req.Namespace), err)
	}
	log = log.With("pod", podName(pod))
	var warnings []string
	ns := h.namespace(ctx, pod.Namespace, log, &warnings)
	res, err := inject.Pod(h.Config, inject.Request{Pod: pod, Namespace: ns})
	if err != nil {
		return h.failed(log, err)
	}
	if !res.Injected {
		log.Info("pod not injected", "reason", res.Reason)
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
	}
	if envs := parseInjectEnvs(path); len(envs) > 0 {
		setProxyEnv(res.Pod, envs)
	}
	patch, err := podPatch(pod, res.Pod)
	if err != nil {
		return h.failed(log, err)
	}
	log.Info("pod injected", "patch_ops", len(patch.ops))
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch.raw, PatchType: &pt,
		Warnings: append(warnings, res.Warnings...)}
}

// failed answers an injection failure: refused with the error (Istio), or admitted
// unchanged with the error as a warning (AllowOnError).
func (h *Handler) failed(log *slog.Logger, err error) *admissionv1.AdmissionResponse {
	msg := "sidecar injection failed: " + err.Error()
	if h.AllowOnError {
		log.Warn("pod admitted without a sidecar: injection failed", "error", err)
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{msg + " (the pod was admitted without a sidecar)"}}
	}
	log.Warn("pod refused: injection failed", "error", err)
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{Status: metav1.StatusFailure, Message: msg, Reason: metav1.StatusReasonBadRequest, Code: http.StatusBadRequest}}
}

// namespace reads the pod's namespace labels; on failure it returns nil (selectors left to
// the API server) and adds a warning.
func (h *Handler) namespace(ctx context.Context, name string, log *slog.Logger, warnings *[]string) *inject.Namespace {
	if h.Namespaces == nil || name == "" {
		return nil
	}
	timeout := h.NamespaceTimeout
	if timeout <= 0 {
		timeout = DefaultNamespaceTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	labels, err := h.Namespaces.NamespaceLabels(ctx, name)
	if err != nil {
		log.Warn("reading the pod's namespace failed; relying on the webhook's namespaceSelector", "namespace", name, "error", err)
		*warnings = append(*warnings, fmt.Sprintf("lucid injector: could not read namespace %s (%v); its labels were not checked again", name, err))
		return nil
	}
	return &inject.Namespace{Name: name, Labels: labels}
}

type patchResult struct {
	ops []Op
	raw []byte
}

// podPatch is the JSON Patch from the admitted pod to the injected one.
func podPatch(from, to *corev1.Pod) (patchResult, error) {
	a, err := json.Marshal(from)
	if err != nil {
		return patchResult{}, fmt.Errorf("encode the admitted pod: %w", err)
	}
	b, err := json.Marshal(to)
	if err != nil {
		return patchResult{}, fmt.Errorf("encode the injected pod: %w", err)
	}
	ops, err := CreatePatch(a, b)
	if err != nil {
		return patchResult{}, err
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return patchResult{}, fmt.Errorf("encode the patch: %w", err)
	}
	return patchResult{ops: ops, raw: raw}, nil
}

// urlParameterEnv maps Istio's short path keys to the proxy variables they set; other keys
// are upper-cased.
var urlParameterEnv = map[string]string{"cluster": "ISTIO_META_CLUSTER_ID", "net": "ISTIO_META_NETWORK"}

// parseInjectEnvs reads the proxy environment variables in a path /inject/k1/v1/k2/v2 (or
// Istio's deprecated /inject/:ENV:k1=v1:ENV:k2=v2). "--slash--" in a value stands for /.
// A key without a value is ignored.
func parseInjectEnvs(path string) map[string]string {
	rest, ok := strings.CutPrefix(strings.TrimSuffix(path, "/"), "/inject/")
	if !ok || rest == "" {
		return nil
	}
	var kv []string
	if strings.HasPrefix(rest, ":ENV:") {
		for _, pair := range strings.Split(rest, ":ENV:")[1:] {
			k, v, found := strings.Cut(pair, "=")
			if k != "" && found {
				kv = append(kv, k, v)
			}
		}
	} else {
		kv = strings.Split(rest, "/")
		for i := 1; i < len(kv); i += 2 {
			kv[i] = strings.ReplaceAll(kv[i], "--slash--", "/")
		}
	}
	envs := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		name, ok := urlParameterEnv[kv[i]]
		if !ok {
			name = strings.ToUpper(kv[i])
		}
		if name != "" {
			envs[name] = kv[i+1]
		}
	}
	return envs
}

// setProxyEnv sets envs on the injected istio-proxy container (replacing same-named ones).
func setProxyEnv(pod *corev1.Pod, envs map[string]string) {
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			c := &list[i]
			if c.Name != inject.ProxyContainerName {
				continue
			}
			for _, k := range sortedKeys(envs) {
				replaced := false
				for j := range c.Env {
					if c.Env[j].Name == k {
						c.Env[j] = corev1.EnvVar{Name: k, Value: envs[k]}
						replaced = true
					}
				}
				if !replaced {
					c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: envs[k]})
				}
			}
		}
	}
}
