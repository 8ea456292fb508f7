package kubeca

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

// The ConfigMap istiod publishes the mesh roots in, in every namespace: injected pods
// mount it at /var/run/secrets/istio/root-cert.pem to verify the control plane's TLS
// port (and the agent's peers).
const (
	RootCertConfigMap = "istio-ca-root-cert"
	RootCertKey       = "root-cert.pem"
)

// IgnoredNamespaces are Kubernetes' own namespaces, where istiod publishes no root
// (Istio's inject.IgnoredNamespaces): no mesh pod runs there.
var IgnoredNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "local-path-storage"}

var (
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// RootPublisher keeps ConfigMap istio-ca-root-cert (key root-cert.pem) in every
// namespace equal to the mesh roots, as istiod's namespace controller: created for a new
// namespace, re-created when deleted, put back when edited, updated when the roots
// change (call RootsChanged). The control plane's service account needs get, list,
// watch on namespaces and get, list, watch, create, update on configmaps, cluster-wide.
type RootPublisher struct {
	Client dynamic.Interface
	// Roots returns the PEM roots to publish (ca.CA.RootsPEM).
	Roots func() []byte
	Log   *slog.Logger
	// Retry is how long a namespace whose ConfigMap could not be written waits before the
	// next attempt (default 2 s).
	Retry time.Duration

	mu    sync.Mutex
	dirty map[string]bool // namespaces to check
	all   bool            // every namespace is to be checked
	kick  chan struct{}   // holds at most one token: "dirty is not empty"
}

// Run publishes until ctx ends. It returns once its watches stopped; an API server that
// cannot be reached or refuses the lists is retried, with a warning.
func (p *RootPublisher) Run(ctx context.Context) error {
	log := p.logger()
	retry := p.Retry
	if retry <= 0 {
		retry = 2 * time.Second
	}
	p.mu.Lock()
	p.dirty, p.kick = map[string]bool{}, make(chan struct{}, 1)
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	nsInf := p.informer(namespacesGVR, "", log)
	cmInf := p.informer(configMapsGVR, "metadata.name="+RootCertConfigMap, log)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, inf := range []cache.SharedIndexInformer{nsInf, cmInf} {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	if !cache.WaitForCacheSync(ctx.Done(), nsInf.HasSynced, cmInf.HasSynced) {
		return nil
	}
	log.Info("publishing the mesh roots in every namespace", "configmap", RootCertConfigMap, "key", RootCertKey)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.kick:
		}
		p.mu.Lock()
		todo := p.dirty
		if p.all {
			for _, k := range nsInf.GetStore().ListKeys() {
				todo[k] = true
			}
		}
		p.dirty, p.all = map[string]bool{}, false
		p.mu.Unlock()
		failed := false
		for ns := range todo {
			if err := p.reconcile(ctx, ns, nsInf.GetStore(), cmInf.GetIndexer()); err != nil && ctx.Err() == nil {
				log.Warn("cannot publish the mesh roots", "namespace", ns, "configmap", RootCertConfigMap, "error", err)
				p.mark(ns, false)
				failed = true
			}
		}
		if failed {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(retry):
			}
		}
	}
}

// RootsChanged has every namespace's ConfigMap checked against the current roots.
func (p *RootPublisher) RootsChanged() { p.mark("", true) }

// mark queues namespace ns (every namespace with all) and wakes Run.
func (p *RootPublisher) mark(ns string, all bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dirty == nil {
		return // not running
	}
	if all {
		p.all = true
	} else {
		p.dirty[ns] = true
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// informer watches gvr (only the objects fieldSelector selects) and marks the namespace
// of every change: a namespace's own name, a ConfigMap's namespace.
func (p *RootPublisher) informer(gvr schema.GroupVersionResource, fieldSelector string, log *slog.Logger) cache.SharedIndexInformer {
	ri := p.Client.Resource(gvr)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = fieldSelector
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = fieldSelector
			return ri.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		log.Warn("Kubernetes watch failed; retrying", "resource", gvr.String(), "error", err)
	})
	on := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if u, ok := obj.(*unstructured.Unstructured); ok {
			p.mark(cmp.Or(u.GetNamespace(), u.GetName()), false)
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(_, n any) { on(n) }, DeleteFunc: on})
	return inf
}

// reconcile makes namespace ns's ConfigMap hold the roots: created when missing, its
// root-cert.pem put back when it differs.
func (p *RootPublisher) reconcile(ctx context.Context, ns string, nsl cache.Store, cml cache.Store) error {
	if slices.Contains(IgnoredNamespaces, ns) {
		return nil
	}
	obj, ok, err := nsl.GetByKey(ns)
	if err != nil || !ok {
		return err // !ok: deleted
	}
	if phase, _, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "status", "phase"); phase == "Terminating" {
		return nil
	}
	roots := p.Roots()
	cms := p.Client.Resource(configMapsGVR).Namespace(ns)
	obj, ok, err = cml.GetByKey(ns + "/" + RootCertConfigMap)
	if err != nil {
		return err
	}
	if !ok {
		cm := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": RootCertConfigMap, "namespace": ns,
				"labels": map[string]any{"istio.io/config": "true"}},
			"data": map[string]any{RootCertKey: string(roots)},
		}}
		_, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "lucid-discovery"})
		if apierrors.IsAlreadyExists(err) {
			return nil // the watch brings it; its content is checked then
		}
		if err != nil {
			return fmt.Errorf("create configmap %s/%s: %w", ns, RootCertConfigMap, err)
		}
		p.logger().Info("mesh roots published", "namespace", ns, "configmap", RootCertConfigMap)
		return nil
	}
	cur := obj.(*unstructured.Unstructured)
	if got, _, _ := unstructured.NestedString(cur.Object, "data", RootCertKey); bytes.Equal([]byte(got), roots) {
		return nil
	}
	cm := cur.DeepCopy()
	if err := unstructured.SetNestedField(cm.Object, string(roots), "data", RootCertKey); err != nil {
		return err
	}
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "lucid-discovery"}); err != nil {
		return fmt.Errorf("update configmap %s/%s: %w", ns, RootCertConfigMap, err)
	}
	p.logger().Info("mesh roots updated", "namespace", ns, "configmap", RootCertConfigMap)
	return nil
}

func (p *RootPublisher) logger() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}
