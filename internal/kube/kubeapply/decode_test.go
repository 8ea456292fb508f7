package kubeapply

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string // Doc.String() of each object
		error string   // substring of the error, if any
	}{
		{
			name: "two documents, a comment-only one and a trailing separator",
			in: `# leading comment
apiVersion: v1
kind: Namespace
metadata: {name: a}
--- # separator with a comment
# nothing here
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
  namespace: a
---
`,
			want: []string{"document 1 (line 1, Namespace a)", "document 3 (line 8, ConfigMap a/b)"},
		},
		{
			name: "JSON document",
			in:   `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "j"}}`,
			want: []string{"document 1 (line 1, Namespace j)"},
		},
		{
			name: "List items become objects",
			in: `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x1}}
- {apiVersion: v1, kind: Namespace, metadata: {name: y1}}
`,
			want: []string{"document 1 (line 1, Namespace x1)", "document 1 (line 1, Namespace y1)"},
		},
		{
			name:  "no name",
			in:    "apiVersion: v1\nkind: Namespace\n---\napiVersion: v1\nkind: Namespace\nmetadata: {generateName: x-}\n",
			error: "document 1 (line 1): Namespace has no metadata.name",
		},
		{
			name:  "no kind in the second document",
			in:    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n",
			error: "document 2 (line 5): ",
		},
		{
			name:  "broken YAML",
			in:    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\n  kind: [\n",
			error: "document 2 (line 5): ",
		},
		{
			name:  "a list is not an object",
			in:    "- a\n- b\n",
			error: "document 1 (line 1): not an object",
		},
		{
			name:  "bad apiVersion",
			in:    "apiVersion: a/b/c\nkind: X\nmetadata: {name: a}\n",
			error: "document 1 (line 1): apiVersion",
		},
		{name: "empty stream", in: "", want: nil},
		{name: "separators only", in: "---\n---\n", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Decode([]byte(tt.in))
			if tt.error != "" {
				if err == nil || !strings.Contains(err.Error(), tt.error) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("docs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestIntegersStayIntegers(t *testing.T) {
	docs, err := Decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := docs[0].Obj.Object["spec"].(map[string]any)["replicas"].(int64); !ok || r != 3 {
		t.Errorf("replicas = %#v, want int64 3", docs[0].Obj.Object["spec"])
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{}]\n"))
	f.Add([]byte(`{"apiVersion": "v1", "kind": "X", "metadata": {"name": 1}}`))
	f.Add([]byte("--- #\n- a\n---\n: :\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		docs, err := Decode(b)
		if err != nil {
			return
		}
		for _, d := range docs {
			if d.Obj.GetName() == "" || d.Obj.GetKind() == "" || d.Obj.GetAPIVersion() == "" {
				t.Fatalf("accepted %s without name, kind or apiVersion", d)
			}
		}
	})
}
