package kubeapply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// mapper finds the resource (and scope) of a kind by reading the server's discovery
// document of the kind's group/version (/api/v1 or /apis/<group>/<version>). It is a
// small stand-in for client-go's discovery RESTMapper, which would pull every built-in
// API type into the binary (k8s.io/client-go/kubernetes/scheme).
type mapper struct {
	base   *url.URL
	client *http.Client

	mu    sync.Mutex
	cache map[schema.GroupVersion]*metav1.APIResourceList
}

// mapping is where a kind lives.
type mapping struct {
	resource   schema.GroupVersionResource
	namespaced bool
}

// errNoKind is returned when the server does not serve a kind (yet).
var errNoKind = errors.New("not served by the API server")

func newMapper(cfg *rest.Config) (*mapper, error) {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeapply: client: %w", err)
	}
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeapply: server URL: %w", err)
	}
	return &mapper{base: base, client: client, cache: map[schema.GroupVersion]*metav1.APIResourceList{}}, nil
}

// forget drops a cached group/version, so the next lookup asks the server again (after a
// CRD was applied).
func (m *mapper) forget(gv schema.GroupVersion) {
	m.mu.Lock()
	delete(m.cache, gv)
	m.mu.Unlock()
}

func (m *mapper) lookup(ctx context.Context, gvk schema.GroupVersionKind) (mapping, error) {
	gv := gvk.GroupVersion()
	list, err := m.resources(ctx, gv)
	if err != nil {
		return mapping{}, err
	}
	for _, r := range list.APIResources {
		if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") { // not a subresource
			return mapping{resource: gv.WithResource(r.Name), namespaced: r.Namespaced}, nil
		}
	}
	return mapping{}, fmt.Errorf("kind %s in %s: %w", gvk.Kind, gv, errNoKind)
}

func (m *mapper) resources(ctx context.Context, gv schema.GroupVersion) (*metav1.APIResourceList, error) {
	m.mu.Lock()
	list, ok := m.cache[gv]
	m.mu.Unlock()
	if ok {
		return list, nil
	}
	u := *m.base
	if gv.Group == "" {
		u.Path = path.Join(u.Path, "/api", gv.Version)
	} else {
		u.Path = path.Join(u.Path, "/apis", gv.Group, gv.Version)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("API group/version %s: %w", gv, errNoKind)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("discovery of %s: %s: %s", gv, resp.Status, strings.TrimSpace(string(body)))
	}
	list = &metav1.APIResourceList{}
	if err := json.Unmarshal(body, list); err != nil {
		return nil, fmt.Errorf("discovery of %s: %w", gv, err)
	}
	m.mu.Lock()
	m.cache[gv] = list
	m.mu.Unlock()
	return list, nil
}
