// Package kube is the Kubernetes config source: informers on Services, EndpointSlices,
// Pods and Namespaces and on Istio's CRDs, turned into the same config.Objects the file
// source produces, so one model serves both. It sits at the top of the control-plane flow:
//
//	source/kube → config → store → model → translate → ads
//
// Kubernetes resources become the model's objects in registry.objects (services.go); Istio
// objects go through config.Parse like files (istio.go), and the invalid ones get a Warning
// Event with the same message (events.go).
//
// Only k8s.io/client-go/dynamic, tools/cache and k8s.io/api types are used: no typed
// clientset, informer factory or discovery client, which would register every API group
// at init in every lucid process.
package kube

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/kube/kubeclient"
)

// DefaultCRDRecheck is how often Run looks again for Istio CRDs that were not installed.
const DefaultCRDRecheck = 30 * time.Second

var (
	servicesGVR   = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	podsGVR       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	slicesGVR     = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
)

// Options configure a Source. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Mesh is the mesh config; its discoverySelectors limit the namespaces whose
	// Services, EndpointSlices and Pods are read (none: every namespace). Istio objects
	// are read in every namespace.
	Mesh *meshv1alpha1.MeshConfig
	// CRDRecheck is how often missing Istio CRDs are looked for again (DefaultCRDRecheck).
	CRDRecheck time.Duration
	// NoEvents disables the Warning Events on invalid Istio objects.
	NoEvents bool
}

// buildInterval is the least time between the starts of two builds of the object set. A
// change after a quiet period is built at once; under a stream of changes (100 endpoint
// changes a second) the source builds ten times a second instead of after every event,
// which adds at most a fifth of the store's own interval for endpoint changes (500 ms) to
// a change's way to the proxies.
const buildInterval = 100 * time.Millisecond

// Source watches one Kubernetes API server.
type Source struct {
	dyn        dynamic.Interface
	log        *slog.Logger
	selectors  []labels.Selector
	crdRecheck time.Duration
	events     *reporter // nil with NoEvents

	// kick holds at most one token: "an informer saw a change since the last build".
	kick chan struct{}

	services, slices, pods, namespaces cache.SharedIndexInformer

	mu      sync.Mutex                           // guards istio and missing
	istio   map[string]cache.SharedIndexInformer // Istio kind → informer
	missing []istioKind                          // kinds whose CRD is not served

	// podsGen counts changes of Pods, Services and Namespaces: what a pod's conversion
	// reads. A build after which it did not move reuses the last build's pods.
	podsGen atomic.Uint64

	parser *parser      // owned by Run's goroutine
	conv   converted    // the last build's Services and Pods (converted.go); owned by Run's goroutine
	creds  *credentials // Gateway credentials (credentials.go); set by Run, owned by its goroutine
}

// New returns a Source reading through c.
func New(c *kubeclient.Clients, o Options) (*Source, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		dyn: c.Dynamic, log: log, crdRecheck: o.CRDRecheck, kick: make(chan struct{}, 1),
		istio: map[string]cache.SharedIndexInformer{}, parser: newParser(),
	}
	if s.crdRecheck <= 0 {
		s.crdRecheck = DefaultCRDRecheck
	}
	if !o.NoEvents {
		s.events = newReporter(c.Dynamic, log)
	}
	for i, ls := range o.Mesh.GetDiscoverySelectors() {
		sel, err := selector(ls)
		if err != nil {
			return nil, fmt.Errorf("meshConfig.discoverySelectors[%d]: %w", i, err)
		}
		s.selectors = append(s.selectors, sel)
	}
	return s, nil
}

func selector(ls *meshv1alpha1.LabelSelector) (labels.Selector, error) {
	m := &metav1.LabelSelector{MatchLabels: ls.GetMatchLabels()}
	for _, e := range ls.GetMatchExpressions() {
		m.MatchExpressions = append(m.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.GetKey(), Operator: metav1.LabelSelectorOperator(e.GetOperator()), Values: e.GetValues(),
		})
	}
	sel, err := metav1.LabelSelectorAsSelector(m)
	if err != nil {
		return nil, fmt.Errorf("label selector: %w", err)
	}
	return sel, nil
}

// changed is every informer's event handler. Backpressure rule: it never blocks and
// never queues. It leaves one token in the one-slot kick channel (or finds one there),
// and the build loop, when it takes the token, reads the newest state of every informer
// cache. Any number of changes during a build collapse into one next build, so a slow
// build always gets the newest state and memory is bounded by the caches themselves.
func (s *Source) changed() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// handler is an informer's event handler; gen, when set, counts its changes.
func (s *Source) handler(gen *atomic.Uint64) cache.ResourceEventHandler {
	changed := func() {
		if gen != nil {
			gen.Add(1)
		}
		s.changed()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { changed() },
		UpdateFunc: func(old, cur any) {
			if !sameContent(old, cur) {
				changed()
			}
		},
		DeleteFunc: func(any) { changed() },
	}
}

// sameContent reports whether two versions of a trimmed object differ only in their
// resourceVersion (a pod's status heartbeat, say): such updates need no build.
func sameContent(a, b any) bool {
	switch x := a.(type) {
	case *corev1.Pod:
		y, ok := b.(*corev1.Pod)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.ResourceVersion, yc.ResourceVersion = "", ""
		return equality.Semantic.DeepEqual(&xc, &yc)
	case *discoveryv1.EndpointSlice:
		y, ok := b.(*discoveryv1.EndpointSlice)
		if !ok {
			return false
		}
		xc, yc := *x, *y
		xc.ResourceVersion, yc.ResourceVersion = "", ""
		return equality.Semantic.DeepEqual(&xc, &yc)
	}
	return false
}

// newInformer is an informer on gvr whose cache holds what transform makes of each object.
func (s *Source) newInformer(gvr schema.GroupVersionResource, transform cache.TransformFunc, gen *atomic.Uint64) cache.SharedIndexInformer {
	ri := s.dyn.Resource(gvr)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return ri.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return ri.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
	_ = inf.SetTransform(transform) // errors only once started
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		s.log.Warn("Kubernetes watch failed; retrying", "resource", gvr.String(), "error", err)
	})
	_, _ = inf.AddEventHandler(s.handler(gen))
	return inf
}

// Run starts the informers, waits until their caches are filled, then calls onChange with
// every object and diagnostic once and again after every change, until ctx ends. onChange
// runs on Run's goroutine. Run fails at once when the API server cannot be reached or
// refuses to list what discovery needs; later watch failures are logged and retried.
func (s *Source) Run(ctx context.Context, onChange func([]*config.Object, []config.Diagnostic)) error {
	for _, gvr := range []schema.GroupVersionResource{namespacesGVR, servicesGVR, slicesGVR, podsGVR} {
		if _, ok, err := kubeclient.Served(ctx, s.dyn, []schema.GroupVersionResource{gvr}); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s not served", gvr.String())
			}
			return fmt.Errorf("kubernetes: %w", err)
		}
	}
	s.namespaces = s.newInformer(namespacesGVR, transform(toNamespace), &s.podsGen)
	s.services = s.newInformer(servicesGVR, transform(toService), &s.podsGen)
	s.slices = s.newInformer(slicesGVR, transform(toEndpointSlice), nil)
	s.pods = s.newInformer(podsGVR, transform(toPod), &s.podsGen)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := func(inf cache.SharedIndexInformer) {
		wg.Add(1)
		go func() { defer wg.Done(); inf.RunWithContext(ctx) }()
	}
	synced := []cache.InformerSynced{}
	for _, inf := range []cache.SharedIndexInformer{s.namespaces, s.services, s.slices, s.pods} {
		start(inf)
		synced = append(synced, inf.HasSynced)
	}
	if err := s.findCRDs(ctx, func(inf cache.SharedIndexInformer) {
		start(inf)
		synced = append(synced, inf.HasSynced)
	}); err != nil {
		return err
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return nil // ctx ended
	}
	s.log.Info("Kubernetes caches synced")
	if s.events != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.events.run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.recheckCRDs(ctx, start) }()
	s.creds = newCredentials(newSecretWatch(ctx, &wg, s))

	for {
		began := time.Now()
		objs, diags := s.build()
		onChange(objs, diags)
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		}
		if wait := buildInterval - time.Since(began); wait > 0 {
			select { // changes that arrive meanwhile join this build
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
	}
}

// findCRDs makes an informer for every Istio kind whose CRD is served (the first served
// version in istioKinds' order) and records the others as missing.
func (s *Source) findCRDs(ctx context.Context, start func(cache.SharedIndexInformer)) error {
	s.mu.Lock()
	kinds := s.missing
	if len(s.istio) == 0 && len(kinds) == 0 {
		kinds = istioKinds
	}
	s.mu.Unlock()
	var missing []istioKind
	for _, k := range kinds {
		var cands []schema.GroupVersionResource
		for _, v := range k.versions {
			cands = append(cands, schema.GroupVersionResource{Group: k.group, Version: v, Resource: k.resource})
		}
		gvr, ok, err := kubeclient.Served(ctx, s.dyn, cands)
		if err != nil {
			return fmt.Errorf("kubernetes: %w", err)
		}
		if !ok {
			missing = append(missing, k)
			continue
		}
		inf := s.newInformer(gvr, transform(trimIstio), nil)
		s.mu.Lock()
		s.istio[k.kind] = inf
		s.mu.Unlock()
		start(inf)
		s.log.Info("watching Istio objects", "kind", k.kind, "apiVersion", gvr.GroupVersion().String())
	}
	s.mu.Lock()
	s.missing = missing
	s.mu.Unlock()
	for _, k := range missing {
		s.log.Warn("Istio CRD not installed; its objects are not read until it is (lucid install)", "kind", k.kind, "group", k.group)
	}
	return nil
}

// recheckCRDs looks for missing CRDs every crdRecheck until ctx ends or none is missing.
func (s *Source) recheckCRDs(ctx context.Context, start func(cache.SharedIndexInformer)) {
	t := time.NewTicker(s.crdRecheck)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.missing)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var added []cache.InformerSynced
		err := s.findCRDs(ctx, func(inf cache.SharedIndexInformer) {
			start(inf)
			added = append(added, inf.HasSynced)
		})
		// The build skips an informer until it has synced; build again once it has.
		if len(added) > 0 && cache.WaitForCacheSync(ctx.Done(), added...) {
			s.changed()
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("looking for Istio CRDs failed", "error", err)
		}
	}
}

// build reads every cache and converts it.
func (s *Source) build() ([]*config.Object, []config.Diagnostic) {
	inMesh := s.namespaceFilter()
	reg := &registry{conv: &s.conv}
	for _, o := range s.services.GetStore().List() {
		if svc, ok := o.(*corev1.Service); ok && inMesh(svc.Namespace) {
			reg.services = append(reg.services, svc)
		}
	}
	for _, o := range s.slices.GetStore().List() {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok && inMesh(es.Namespace) {
			reg.slices = append(reg.slices, es)
		}
	}
	// Read before the pods are listed: a change during the listing makes the next build
	// list them again.
	if gen := s.podsGen.Load(); s.conv.podIndex != nil && gen == s.conv.podsGen {
		reg.pods, reg.podsAsBefore = s.conv.podList, true
	} else {
		for _, o := range s.pods.GetStore().List() {
			if p, ok := o.(*corev1.Pod); ok && inMesh(p.Namespace) {
				reg.pods = append(reg.pods, p)
			}
		}
		s.conv.podsGen, s.conv.podList = gen, reg.pods
	}
	objs, diags := reg.objects()

	items := map[string]istioItem{}
	s.mu.Lock()
	for kind, inf := range s.istio {
		if !inf.HasSynced() {
			continue
		}
		for _, o := range inf.GetStore().List() {
			if u, ok := o.(*unstructured.Unstructured); ok {
				items[fmt.Sprintf("%s %s/%s", kind, u.GetNamespace(), u.GetName())] = istioItem{kind: kind, obj: u}
			}
		}
	}
	missing := slices.Clone(s.missing)
	s.mu.Unlock()
	iobjs, idiags, results := s.parser.istioObjects(items)
	objs = append(objs, iobjs...)
	diags = append(diags, idiags...)
	if s.creds != nil {
		var gateways []*config.Object
		for _, o := range iobjs {
			if o.Kind == config.KindGateway {
				gateways = append(gateways, o)
			}
		}
		cobjs, cdiags := s.creds.resolve(credentialRefs(gateways, reg.pods))
		objs = append(objs, cobjs...)
		for _, k := range slices.Sorted(maps.Keys(cdiags)) {
			diags = append(diags, cdiags[k]...)
		}
		results = withDiagnostics(results, cdiags)
	}
	for _, k := range missing {
		diags = append(diags, config.Diagnostic{Level: config.Info,
			Message: fmt.Sprintf("%s objects are not read: the %s CRD (%s) is not installed", k.kind, k.resource, k.group)})
	}
	if s.events != nil {
		s.events.add(results, items)
	}
	return objs, diags
}

// namespaceFilter reports whether a namespace is part of the mesh (meshConfig
// discoverySelectors; any selector matching the namespace's labels selects it).
func (s *Source) namespaceFilter() func(string) bool {
	if len(s.selectors) == 0 {
		return func(string) bool { return true }
	}
	in := map[string]bool{}
	for _, o := range s.namespaces.GetStore().List() {
		ns, ok := o.(*corev1.Namespace)
		if !ok {
			continue
		}
		for _, sel := range s.selectors {
			if sel.Matches(labels.Set(ns.Labels)) {
				in[ns.Name] = true
				break
			}
		}
	}
	return func(ns string) bool { return in[ns] }
}
