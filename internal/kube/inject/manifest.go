package inject

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Report says what happened to one document of a manifest.
type Report struct {
	Object   string // "Deployment default/reviews-v1" (or "document 3" when it has no kind)
	Injected bool
	Reason   string   // why not, when a workload was not injected
	Warnings []string // from the injection
}

// Manifests is `kube-inject`: it injects the pod templates of every Pod, Deployment,
// StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job and CronJob in a multi-
// document YAML stream, and passes every other document (and every workload left alone)
// through byte for byte. Namespace selectors are not applied (there is no cluster to ask).
func Manifests(cfg Config, in []byte) ([]byte, []Report, error) {
	var out bytes.Buffer
	var reports []Report
	docs := splitDocuments(in)
	for i, doc := range docs {
		if i > 0 {
			out.WriteString("---\n")
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			out.Write(doc)
			continue
		}
		injected, rep, err := document(cfg, doc)
		if rep.Object == "" {
			rep.Object = fmt.Sprintf("document %d", i+1)
		}
		if err != nil {
			return nil, reports, fmt.Errorf("%s: %w", rep.Object, err)
		}
		if rep.Object != "" && (rep.Injected || rep.Reason != "") {
			reports = append(reports, rep)
		}
		if injected == nil {
			out.Write(doc)
			continue
		}
		out.Write(injected)
	}
	return out.Bytes(), reports, nil
}

// document injects one document; a nil result means "pass it through".
func document(cfg Config, doc []byte) ([]byte, Report, error) {
	var tm struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, Report{}, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	ns := tm.Metadata.Namespace
	rep := Report{Object: strings.TrimSpace(fmt.Sprintf("%s %s", tm.Kind, objectName(ns, tm.Metadata.Name)))}
	group := tm.GroupVersionKind().Group
	switch {
	case group == "" && tm.Kind == "Pod":
		var p corev1.Pod
		if err := yaml.Unmarshal(doc, &p); err != nil {
			return nil, rep, fmt.Errorf("not a Pod: %w", err)
		}
		res, err := Pod(cfg, Request{Pod: &p})
		return finish(res, err, rep, res.Pod)
	case group == "" && tm.Kind == "ReplicationController":
		var o corev1.ReplicationController
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return o.Spec.Template }, ns, tm.Metadata.Name, rep)
	case group == "apps" && tm.Kind == "Deployment":
		var o appsv1.Deployment
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, ns, tm.Metadata.Name, rep)
	case group == "apps" && tm.Kind == "StatefulSet":
		var o appsv1.StatefulSet
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, ns, tm.Metadata.Name, rep)
	case group == "apps" && tm.Kind == "DaemonSet":
		var o appsv1.DaemonSet
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, ns, tm.Metadata.Name, rep)
	case group == "apps" && tm.Kind == "ReplicaSet":
		var o appsv1.ReplicaSet
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, ns, tm.Metadata.Name, rep)
	case group == "batch" && tm.Kind == "Job":
		var o batchv1.Job
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return &o.Spec.Template }, ns, tm.Metadata.Name, rep)
	case group == "batch" && tm.Kind == "CronJob":
		var o batchv1.CronJob
		return templated(cfg, doc, &o, func() *corev1.PodTemplateSpec { return &o.Spec.JobTemplate.Spec.Template }, ns, tm.Metadata.Name, rep)
	}
	return nil, Report{}, nil
}

func objectName(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// templated injects the pod template of a workload object: the template becomes a pod in
// the object's namespace, named after the object for the workload's canonical name.
func templated(cfg Config, doc []byte, obj any, tmpl func() *corev1.PodTemplateSpec, ns, name string, rep Report) ([]byte, Report, error) {
	if err := yaml.Unmarshal(doc, obj); err != nil {
		return nil, rep, fmt.Errorf("malformed: %w", err)
	}
	t := tmpl()
	if t == nil {
		return nil, rep, nil
	}
	pod := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	if pod.Namespace == "" {
		pod.Namespace = ns
	}
	res, err := Pod(cfg, Request{Pod: pod, Workload: name})
	if err == nil && res.Injected {
		res.Pod.Namespace = t.Namespace
		t.ObjectMeta, t.Spec = res.Pod.ObjectMeta, res.Pod.Spec
	}
	return finish(res, err, rep, obj)
}

func finish(res Result, err error, rep Report, obj any) ([]byte, Report, error) {
	if err != nil {
		return nil, rep, err
	}
	rep.Injected, rep.Reason, rep.Warnings = res.Injected, res.Reason, res.Warnings
	if !res.Injected {
		return nil, rep, nil
	}
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, rep, fmt.Errorf("encode: %w", err)
	}
	return b, rep, nil
}

// splitDocuments splits a YAML stream at its "---" lines, keeping each document's bytes.
func splitDocuments(in []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(in))
	sc.Buffer(make([]byte, 0, 64*1024), len(in)+1)
	first := true
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.SplitN(line[3:], "#", 2)[0]) == "" {
			if !first || cur.Len() > 0 {
				docs = append(docs, bytes.Clone(cur.Bytes()))
			}
			cur.Reset()
			first = false
			continue
		}
		first = false
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if cur.Len() > 0 || len(docs) == 0 {
		docs = append(docs, cur.Bytes())
	}
	return docs
}

// stripComments drops comment lines, to tell an empty document from a real one.
func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}
