// Package kubeapply applies multi-document YAML to a Kubernetes API server with
// server-side apply, like `kubectl apply --server-side --force-conflicts -f -`. It is the
// last step of `lucid install --apply` (internal/kube/install renders, kubeapply applies) and
// a test helper (internal/testutil/kubetest installs the Istio CRDs with it). It uses client-go's
// dynamic client and reads the server's discovery documents itself, so it pulls no typed
// API into the binary.
package kubeapply

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Defaults of Options.
const (
	DefaultNamespace  = "default"
	DefaultCRDTimeout = time.Minute
)

// Options tune ApplyWith.
type Options struct {
	FieldManager string // required: the owner of the applied fields
	// Namespace for namespaced objects without metadata.namespace; default "default".
	Namespace string
	// CRDTimeout bounds the wait for the API server to serve a kind whose
	// CustomResourceDefinition is earlier in the same stream.
	CRDTimeout time.Duration
	// Poll is the interval of that wait; default 200ms.
	Poll time.Duration
}

// Outcome of one object's apply, in kubectl's words.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"
	Changed   Outcome = "configured"
	Unchanged Outcome = "unchanged"
)

// Result is one applied object.
type Result struct {
	Doc      Doc
	Resource schema.GroupVersionResource
	Outcome  Outcome
}

func (r Result) String() string {
	name := r.Resource.Resource
	if r.Resource.Group != "" {
		name += "." + r.Resource.Group
	}
	name += "/" + r.Doc.Obj.GetName()
	if ns := r.Doc.Obj.GetNamespace(); ns != "" {
		name = ns + " " + name
	}
	return name + " " + string(r.Outcome)
}

// Apply server-side-applies every object of a multi-document YAML stream, in order, with
// the given field manager, taking ownership of conflicting fields. An error names the
// document (index, line, kind namespace/name) and stops the apply there.
func Apply(ctx context.Context, cfg *rest.Config, yaml []byte, fieldManager string) error {
	_, err := ApplyWith(ctx, cfg, yaml, Options{FieldManager: fieldManager})
	return err
}

// ApplyWith is Apply with options; it returns what happened to each object applied before
// an error.
func ApplyWith(ctx context.Context, cfg *rest.Config, yaml []byte, o Options) ([]Result, error) {
	if o.FieldManager == "" {
		return nil, errors.New("kubeapply: no field manager")
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.CRDTimeout == 0 {
		o.CRDTimeout = DefaultCRDTimeout
	}
	if o.Poll == 0 {
		o.Poll = 200 * time.Millisecond
	}
	docs, err := Decode(yaml)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeapply: client: %w", err)
	}
	m, err := newMapper(cfg)
	if err != nil {
		return nil, err
	}
	a := &applier{o: o, dyn: dyn, mapper: m, declared: map[schema.GroupKind]bool{}}
	var results []Result
	for _, d := range docs {
		r, err := a.apply(ctx, d)
		if err != nil {
			return results, fmt.Errorf("kubeapply: %s: %w", d, err)
		}
		results = append(results, r)
	}
	return results, nil
}

type applier struct {
	o        Options
	dyn      dynamic.Interface
	mapper   *mapper
	declared map[schema.GroupKind]bool // kinds of CRDs applied earlier in the stream
}

func (a *applier) apply(ctx context.Context, d Doc) (Result, error) {
	gvk := d.Obj.GroupVersionKind()
	mp, err := a.lookup(ctx, gvk)
	if err != nil {
		return Result{}, err
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(mp.resource)
	if mp.namespaced {
		if d.Obj.GetNamespace() == "" {
			d.Obj.SetNamespace(a.o.Namespace)
		}
		ri = a.dyn.Resource(mp.resource).Namespace(d.Obj.GetNamespace())
	} else if ns := d.Obj.GetNamespace(); ns != "" {
		return Result{}, fmt.Errorf("%s is cluster-scoped but metadata.namespace is %q", gvk.Kind, ns)
	}

	outcome := Created
	before, err := ri.Get(ctx, d.Obj.GetName(), metav1.GetOptions{})
	switch {
	case err == nil:
		outcome = Changed
	case !apierrors.IsNotFound(err):
		return Result{}, fmt.Errorf("get: %w", err)
	}
	after, err := ri.Apply(ctx, d.Obj.GetName(), d.Obj, metav1.ApplyOptions{FieldManager: a.o.FieldManager, Force: true})
	if err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	if before != nil && before.GetResourceVersion() == after.GetResourceVersion() {
		outcome = Unchanged
	}
	if gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition" {
		a.declare(d.Obj)
	}
	return Result{Doc: d, Resource: mp.resource, Outcome: outcome}, nil
}

// declare remembers the kind a CRD defines: its objects later in the stream wait until the
// API server serves them.
func (a *applier) declare(crd *unstructured.Unstructured) {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	if kind != "" {
		a.declared[schema.GroupKind{Group: group, Kind: kind}] = true
	}
}

// lookup maps a kind to its resource; a kind declared by a CRD of this stream is waited
// for (the API server serves a new CRD after a moment).
func (a *applier) lookup(ctx context.Context, gvk schema.GroupVersionKind) (mapping, error) {
	mp, err := a.mapper.lookup(ctx, gvk)
	if err == nil || !errors.Is(err, errNoKind) || !a.declared[gvk.GroupKind()] {
		return mp, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.o.CRDTimeout)
	defer cancel()
	t := time.NewTicker(a.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return mapping{}, fmt.Errorf("%w (its CustomResourceDefinition was applied, waited %s): %w", err, a.o.CRDTimeout, ctx.Err())
		case <-t.C:
		}
		a.mapper.forget(gvk.GroupVersion())
		mp, err = a.mapper.lookup(ctx, gvk)
		if err == nil || !errors.Is(err, errNoKind) {
			return mp, err
		}
	}
}
