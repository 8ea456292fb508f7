package kube

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/lucid-mesh/lucid/internal/controlplane/model"
)

// The Secrets Gateways reference, and only those: one informer per Secret, listing and
// watching that one name in its namespace (field selector metadata.name), started when a
// Gateway server's credentialName first names it and stopped when none does any more. No
// other Secret is read, and a watched Secret's cache keeps only Istio's certificate keys,
// so the control plane never holds the cluster's Secrets in memory.

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// secretKeys are the data keys a credential is read from (model.CredentialFromSecrets).
var secretKeys = []string{model.SecretTLSCert, model.SecretTLSKey, model.SecretTLSCA, model.SecretCert, model.SecretKey, model.SecretCACert}

// secretWatch holds the informers of the referenced Secrets. It is owned by the source's
// build loop (set and get are called from it only); its informers run until set drops
// them or the context given to newSecretWatch ends.
type secretWatch struct {
	dyn     dynamic.Interface
	log     *slog.Logger
	ctx     context.Context
	wg      *sync.WaitGroup
	handler cache.ResourceEventHandler
	changed func()
	watches map[string]*watchedSecret // "ns/name"
}

type watchedSecret struct {
	inf    cache.SharedIndexInformer
	cancel context.CancelFunc

	mu  sync.Mutex
	err error // the last list or watch failure (e.g. no RBAC on secrets), until it lists
}

func newSecretWatch(ctx context.Context, wg *sync.WaitGroup, s *Source) *secretWatch {
	return &secretWatch{dyn: s.dyn, log: s.log, ctx: ctx, wg: wg, handler: s.handler(nil), changed: s.changed, watches: map[string]*watchedSecret{}}
}

// set watches exactly the Secrets of want ("ns/name").
func (w *secretWatch) set(want map[string]bool) {
	for k, ws := range w.watches {
		if !want[k] {
			ws.cancel()
			delete(w.watches, k)
			w.log.Info("no Gateway references the Secret any more; stopped watching it", "secret", k)
		}
	}
	for k := range want {
		if _, ok := w.watches[k]; !ok {
			w.watches[k] = w.start(k)
			w.log.Info("watching the Secret a Gateway's credentialName references", "secret", k)
		}
	}
}

// get returns the Secret ns/name (nil when it does not exist) and whether its informer
// has listed it yet (until then, nil says nothing); failed is why it has not, when
// listing failed.
func (w *secretWatch) get(ns, name string) (s *corev1.Secret, known bool, failed error) {
	ws := w.watches[ns+"/"+name]
	if ws == nil {
		return nil, false, nil
	}
	if !ws.inf.HasSynced() {
		ws.mu.Lock()
		defer ws.mu.Unlock()
		return nil, false, ws.err
	}
	for _, o := range ws.inf.GetStore().List() {
		if s, ok := o.(*corev1.Secret); ok && s.Name == name {
			return s, true, nil
		}
	}
	return nil, true, nil
}

func (w *secretWatch) start(key string) *watchedSecret {
	ns, name, _ := strings.Cut(key, "/")
	ri := w.dyn.Resource(secretsGVR).Namespace(ns)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return ri.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	ws := &watchedSecret{inf: inf}
	_ = inf.SetTransform(transform(toSecret))
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.log.Warn("watching a Gateway's Secret failed; retrying (lucid install grants get, list and watch on secrets)", "secret", key, "error", err)
		ws.mu.Lock()
		first := ws.err == nil
		ws.err = err
		ws.mu.Unlock()
		if first && !inf.HasSynced() {
			w.changed() // say why on the Gateway
		}
	})
	_, _ = inf.AddEventHandler(w.handler)
	ctx, cancel := context.WithCancel(w.ctx)
	w.wg.Add(2)
	go func() { defer w.wg.Done(); inf.RunWithContext(ctx) }()
	go func() {
		defer w.wg.Done()
		if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			w.changed() // a Secret that does not exist sends no event: build once it is known
		}
	}()
	ws.cancel = cancel
	return ws
}

// toSecret keeps a Secret's identity, type and Istio's certificate keys only.
func toSecret(u *unstructured.Unstructured) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := convert(u, &s); err != nil {
		return nil, err
	}
	out := &corev1.Secret{Type: s.Type, ObjectMeta: metav1.ObjectMeta{
		Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
	}}
	for _, k := range secretKeys {
		if v, ok := s.Data[k]; ok {
			if out.Data == nil {
				out.Data = map[string][]byte{}
			}
			out.Data[k] = v
		}
	}
	return out, nil
}
