package kubeclient

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Served returns the first of candidates (same group and resource, versions in order of
// preference) that the API server serves, found by listing one object of each; ok is false
// when none is served (the CRD is not installed). Any error other than "not found" (no
// permission, server unreachable) is returned, naming the resource.
func Served(ctx context.Context, dyn dynamic.Interface, candidates []schema.GroupVersionResource) (gvr schema.GroupVersionResource, ok bool, err error) {
	for _, c := range candidates {
		_, err := dyn.Resource(c).List(ctx, metav1.ListOptions{Limit: 1})
		switch {
		case err == nil:
			return c, true, nil
		case apierrors.IsNotFound(err):
			continue
		default:
			return schema.GroupVersionResource{}, false, fmt.Errorf("list %s: %w", resourceString(c), err)
		}
	}
	return schema.GroupVersionResource{}, false, nil
}

func resourceString(g schema.GroupVersionResource) string {
	if g.Group == "" {
		return g.Version + "/" + g.Resource
	}
	return g.Group + "/" + g.Version + "/" + g.Resource
}
