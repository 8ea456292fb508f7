package kubeapply_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lucid-mesh/lucid/internal/kube/kubeapply"
	"github.com/lucid-mesh/lucid/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(kubetest.SharedMain(m)) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// A CRD and an object of its kind in one stream: the object waits until the kind is served.
const widgets = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.apply.lucid.test}
spec:
  group: apply.lucid.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
---
apiVersion: v1
kind: Namespace
metadata:
  name: apply-a
  # The API server bumps an applied object that owns no field at all once more on the
  # second apply (it records a "before-first-apply" manager); a label avoids that.
  labels: {team: a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue}
---
apiVersion: apply.lucid.test/v1
kind: Widget
metadata: {name: w, namespace: apply-a}
spec: {size: 3}
`

func outcomes(rs []kubeapply.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	return strings.Join(s, "\n")
}

func TestApplyThenReapply(t *testing.T) {
	c := kubetest.Shared(t)
	ctx := ctxT(t)
	o := kubeapply.Options{FieldManager: "apply-test"}

	rs, err := kubeapply.ApplyWith(ctx, c.Config, []byte(widgets), o)
	if err != nil {
		t.Fatal(err)
	}
	want := `customresourcedefinitions.apiextensions.k8s.io/widgets.apply.lucid.test created
namespaces/apply-a created
default configmaps/settings created
apply-a widgets.apply.lucid.test/w created`
	if got := outcomes(rs); got != want {
		t.Errorf("first apply:\n%s\nwant:\n%s", got, want)
	}

	rs, err = kubeapply.ApplyWith(ctx, c.Config, []byte(widgets), o)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(rs), strings.ReplaceAll(want, "created", "unchanged"); got != want {
		t.Errorf("second apply:\n%s\nwant:\n%s", got, want)
	}

	changed := strings.Replace(widgets, "size: 3", "size: 4", 1)
	rs, err = kubeapply.ApplyWith(ctx, c.Config, []byte(changed), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := rs[3].Outcome; got != kubeapply.Changed {
		t.Errorf("changed Widget: %s, want configured", got)
	}
	dyn, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	w, err := dyn.Resource(schema.GroupVersionResource{Group: "apply.lucid.test", Version: "v1", Resource: "widgets"}).
		Namespace("apply-a").Get(ctx, "w", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if size := w.Object["spec"].(map[string]any)["size"]; size != int64(4) {
		t.Errorf("stored spec.size = %#v, want 4", size)
	}
	if mf := w.GetManagedFields(); len(mf) != 1 || mf[0].Manager != "apply-test" || mf[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Errorf("managed fields = %+v, want one Apply entry by apply-test", mf)
	}
}

func TestApplyErrorsNameTheDocument(t *testing.T) {
	c := kubetest.Shared(t)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{
			name: "unknown kind",
			yaml: "apiVersion: v1\nkind: Namespace\nmetadata: {name: apply-e1}\n---\napiVersion: v1\nkind: Wat\nmetadata: {name: x}\n",
			want: []string{"document 2 (line 5, Wat x)", "kind Wat in v1", "not served"},
		},
		{
			name: "unknown group",
			yaml: "apiVersion: nope.lucid.test/v1\nkind: Thing\nmetadata: {name: x, namespace: a}\n",
			want: []string{"document 1 (line 1, Thing a/x)", "nope.lucid.test/v1", "not served"},
		},
		{
			name: "rejected by validation",
			yaml: "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  ports: [{port: 70000}]\n",
			want: []string{"document 1 (line 1, Service default/bad)", "apply:", "spec.ports[0].port"},
		},
		{
			name: "namespace on a cluster-scoped kind",
			yaml: "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cr, namespace: a}\n",
			want: []string{"document 1 (line 1, ClusterRole a/cr)", "cluster-scoped"},
		},
		{
			name: "broken YAML is caught before anything is applied",
			yaml: "apiVersion: v1\nkind: Namespace\nmetadata: {name: apply-never}\n---\nkind: [\n",
			want: []string{"document 2 (line 5)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := kubeapply.Apply(ctxT(t), c.Config, []byte(tt.yaml), "apply-test")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	dyn, err := c.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(kubetest.Namespaces).Get(ctxT(t), "apply-never", metav1.GetOptions{}); err == nil {
		t.Error("namespace apply-never was applied although a later document is broken")
	}
}
