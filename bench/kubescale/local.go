package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// localBackend is the twin without Kubernetes: the mesh as Istio YAML in a config
// directory (as `lucid up` serves it), one file per Service with its ServiceEntry, its
// WorkloadEntries (the endpoints) and its DestinationRule; the control plane polls the
// directory. A change rewrites one file.
type localBackend struct {
	dir string
	l   layout

	mu       sync.Mutex
	present  map[int][]int     // svc → endpoint indexes present
	versions map[[2]int]string // (svc, ep) → version label, when flipped
}

func newLocalBackend(dir string, l layout) *localBackend {
	return &localBackend{dir: dir, l: l, present: map[int][]int{}, versions: map[[2]int]string{}}
}

func (b *localBackend) name() string { return "local" }

func (b *localBackend) discoveryArgs() []string { return []string{"-config-dir=" + b.dir} }

func (b *localBackend) populate(context.Context) ([]phase, error) {
	start := time.Now()
	for s := range b.l.services {
		b.present[s] = allEndpoints(b.l.endpoints)
		if err := b.writeService(s); err != nil {
			return nil, err
		}
	}
	svcs := phase{what: "Service files", count: b.l.services, took: time.Since(start)}
	start = time.Now()
	var clients strings.Builder
	for i := range b.l.sidecars + 1 { // + the footprint sidecar's workload
		fmt.Fprintf(&clients, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: %s, namespace: %s}\nspec: {address: %s, labels: {app: client}}\n",
			clientName(i), b.l.ns(i), sidecarAddr(i))
	}
	if b.l.scoped {
		for n := range b.l.namespaces {
			fmt.Fprintf(&clients, "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: scale-%d}\nspec:\n  egress: [{hosts: [\"./*\", \"%s/*\"]}]\n",
				n, sharedNamespace)
		}
	}
	if err := b.write("clients.yaml", clients.String()); err != nil {
		return nil, err
	}
	return []phase{svcs, {what: "client WorkloadEntries and Sidecars", count: b.l.sidecars, took: time.Since(start)}}, nil
}

// write replaces a file atomically, as a careful editor or a ConfigMap update does.
func (b *localBackend) write(name, body string) error {
	p := filepath.Join(b.dir, name)
	if err := os.WriteFile(p+".tmp~", []byte(body), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(p+".tmp~", p); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writeService writes svc's file from the backend's state.
func (b *localBackend) writeService(svc int) error {
	l := b.l
	var s strings.Builder
	fmt.Fprintf(&s, "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: %s, namespace: %s}\nspec:\n  hosts: [%s]\n  location: MESH_INTERNAL\n  resolution: STATIC\n  ports: [{number: %d, name: http, protocol: HTTP}]\n  workloadSelector: {labels: {app: %s}}\n",
		l.svcName(svc), l.ns(svc), l.host(svc), port, l.svcName(svc))
	for _, ep := range b.present[svc] {
		v := version(ep)
		if f, ok := b.versions[[2]int{svc, ep}]; ok {
			v = f
		}
		fmt.Fprintf(&s, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: %s, namespace: %s}\nspec: {address: %s, labels: {app: %s, version: %s}}\n",
			l.podName(svc, ep), l.ns(svc), l.addr(svc, ep), l.svcName(svc), v)
	}
	if l.hasDR(svc) {
		fmt.Fprintf(&s, "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: %s, namespace: %s}\nspec:\n  host: %s\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n",
			l.svcName(svc), l.ns(svc), l.svcName(svc))
	}
	return b.write(l.svcName(svc)+".yaml", s.String())
}

func (b *localBackend) setEndpoints(_ context.Context, svc int, eps []int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.present[svc] = eps
	return b.writeService(svc)
}

func (b *localBackend) setVersion(_ context.Context, svc, ep int, v string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.versions[[2]int{svc, ep}] = v
	return b.writeService(svc)
}

func (b *localBackend) setRetries(_ context.Context, svc, attempts int) error {
	l := b.l
	return b.write("vs-"+l.svcName(svc)+".yaml", fmt.Sprintf(
		"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: %s, namespace: %s}\nspec:\n  hosts: [%s]\n  http:\n  - route: [{destination: {host: %s}}]\n    retries: {attempts: %d, retryOn: connect-failure}\n",
		l.svcName(svc), l.ns(svc), l.svcName(svc), l.svcName(svc), attempts))
}

func (b *localBackend) prepareService(context.Context, int) error { return nil }

func (b *localBackend) createService(_ context.Context, svc int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.present[svc] = allEndpoints(b.l.endpoints)
	return b.writeService(svc)
}
