package kubeapply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// Doc is one object of a multi-document YAML stream.
type Doc struct {
	Index int // 1-based position of the document in the stream
	Line  int // 1-based line where the document starts
	Obj   *unstructured.Unstructured
}

// String names the document for errors and output: "document 3 (line 40, Deployment
// istio-system/lucid-discovery)".
func (d Doc) String() string {
	s := fmt.Sprintf("document %d (line %d", d.Index, d.Line)
	if d.Obj != nil {
		s += ", " + d.Obj.GetKind() + " "
		if ns := d.Obj.GetNamespace(); ns != "" {
			s += ns + "/"
		}
		s += d.Obj.GetName()
	}
	return s + ")"
}

// Decode splits a multi-document YAML (or JSON) stream into objects. Empty documents
// (only comments or whitespace) are skipped; a List's items become documents of their own
// (with the List's index). Every object must have apiVersion, kind and metadata.name.
func Decode(stream []byte) ([]Doc, error) {
	var docs []Doc
	var errs []error
	for _, raw := range split(stream) {
		objs, err := decodeOne(raw.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d (line %d): %w", raw.index, raw.line, err))
			continue
		}
		for _, o := range objs {
			docs = append(docs, Doc{Index: raw.index, Line: raw.line, Obj: o})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubeapply: %w", errors.Join(errs...))
	}
	return docs, nil
}

type rawDoc struct {
	index, line int
	text        []byte
}

// split cuts the stream at "---" separator lines (a separator may carry a trailing comment).
func split(stream []byte) []rawDoc {
	var out []rawDoc
	var cur bytes.Buffer
	start, index := 1, 1
	lines := bytes.SplitAfter(stream, []byte("\n"))
	flush := func() {
		out = append(out, rawDoc{index: index, line: start, text: bytes.Clone(cur.Bytes())})
		cur.Reset()
		index++
	}
	for i, l := range lines {
		if isSeparator(l) {
			flush()
			start = i + 2
			continue
		}
		cur.Write(l)
	}
	flush()
	return out
}

func isSeparator(line []byte) bool {
	s := strings.TrimRight(string(line), " \t\r\n")
	if !strings.HasPrefix(s, "---") {
		return false
	}
	rest := strings.TrimSpace(s[3:])
	return rest == "" || strings.HasPrefix(rest, "#")
}

func decodeOne(text []byte) ([]*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON(text)
	if err != nil {
		return nil, err
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || bytes.Equal(js, []byte("null")) {
		return nil, nil // empty document
	}
	if js[0] != '{' {
		return nil, errors.New("not an object (a Kubernetes manifest is a mapping with apiVersion and kind)")
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, err
	}
	switch {
	case head.APIVersion == "":
		return nil, errors.New("apiVersion not set")
	case head.Kind == "":
		return nil, errors.New("kind not set")
	}
	if _, err := schema.ParseGroupVersion(head.APIVersion); err != nil {
		return nil, fmt.Errorf("apiVersion: %w", err)
	}
	obj, _, err := unstructured.UnstructuredJSONScheme.Decode(js, nil, nil)
	if err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		if err := check(o); err != nil {
			return nil, err
		}
		return []*unstructured.Unstructured{o}, nil
	case *unstructured.UnstructuredList:
		out := make([]*unstructured.Unstructured, 0, len(o.Items))
		for i := range o.Items {
			if err := check(&o.Items[i]); err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			out = append(out, &o.Items[i])
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
}

func check(o *unstructured.Unstructured) error {
	switch {
	case o.GetAPIVersion() == "":
		return errors.New("apiVersion not set")
	case o.GetKind() == "":
		return errors.New("kind not set")
	case o.GetName() == "":
		return fmt.Errorf("%s has no metadata.name (apply needs a name; generateName is not enough)", o.GetKind())
	}
	if _, err := schema.ParseGroupVersion(o.GetAPIVersion()); err != nil {
		return fmt.Errorf("apiVersion: %w", err)
	}
	return nil
}
