// Package webhook is the sidecar injector's admission webhook, served by `lucid discovery`
// on Kubernetes. The API server sends every pod creation the MutatingWebhookConfiguration
// selects; the webhook decodes the pod, asks internal/kube/inject whether and how to inject it
// (with the namespace's labels read through the API), and answers with a JSONPatch:
//
//	kube-apiserver ══ HTTPS POST /inject (AdmissionReview v1) ══▶ Handler ─► inject.Pod ─► JSONPatch
//	   ▲ caBundle                                                  ▲ serving cert
//	   └──── BundlePatcher ◄── selfcert.Authority (Secret) ──► selfcert.Rotator
//
// It also keeps the webhook trusted: the CA (shared by replicas through a Secret) is
// patched into the configuration's caBundle, again whenever someone resets it.
package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// reviewAPIVersion is the only AdmissionReview version served (the installed
// configuration asks for v1 only).
var reviewAPIVersion = admissionv1.SchemeGroupVersion.String()

// DecodeReview parses an AdmissionReview v1 request body. The error names what is wrong:
// the JSON, the apiVersion/kind, or a missing request or uid.
func DecodeReview(body []byte) (*admissionv1.AdmissionReview, error) {
	var ar admissionv1.AdmissionReview
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ar); err != nil {
		return nil, fmt.Errorf("decode AdmissionReview: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode AdmissionReview: data after the JSON object")
	}
	if ar.APIVersion != reviewAPIVersion || ar.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("AdmissionReview: apiVersion %q kind %q, want %s AdmissionReview (set admissionReviewVersions: [v1])",
			ar.APIVersion, ar.Kind, reviewAPIVersion)
	}
	if ar.Request == nil {
		return nil, errors.New("AdmissionReview: no request")
	}
	if ar.Request.UID == "" {
		return nil, errors.New("AdmissionReview: request.uid is empty")
	}
	return &ar, nil
}

// DecodePod reads the pod of a pod admission request. Requests for other kinds or without
// an object are errors naming what was sent.
func DecodePod(req *admissionv1.AdmissionRequest) (*corev1.Pod, error) {
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" {
		return nil, fmt.Errorf("request.kind is %s, want Pod: the injector only handles pods (check the webhook's rules)", kindString(req))
	}
	if len(req.Object.Raw) == 0 {
		return nil, errors.New("request.object is empty")
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("decode request.object as a Pod: %w", err)
	}
	// managedFields can be large and play no part in injection.
	pod.ManagedFields = nil
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	return &pod, nil
}

func kindString(req *admissionv1.AdmissionRequest) string {
	k := req.Kind
	if k.Group == "" {
		return k.Version + " " + k.Kind
	}
	return k.Group + "/" + k.Version + " " + k.Kind
}

// podName names a pod in logs: its name, or its generateName with *** (a Deployment's
// pods have no name yet when they are admitted).
func podName(p *corev1.Pod) string {
	name := p.Name
	if name == "" {
		name = p.GenerateName + "***"
	}
	return p.Namespace + "/" + name
}
