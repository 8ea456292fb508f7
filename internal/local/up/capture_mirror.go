package up

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Under capture the pods have addresses of their own (the loopback addresses of the
// WorkloadEntries are every process's in the host's namespace), so the control plane must
// publish those as the endpoints. The control plane reads a mirror of the config directory
// (beside the state directory) in which each WorkloadEntry that runs in a pod has its pod's
// address as spec.address and its app on 127.0.0.1 (the pod's own loopback; a sidecar
// dialling another loopback address would be captured back to itself). Only those values
// change, in place: file names and line numbers stay the user's, so every diagnostic names
// the user's file and line. The mirror follows the user's edits (mirror.follow).

// mirror keeps dst a rewritten copy of src.
type mirror struct {
	src, dst string
	// addrs: "namespace/name" of a WorkloadEntry → its pod's address.
	addrs map[string]string
}

// sync brings dst up to date with src; it writes only files whose content changed, so the
// control plane sees a change only when the user made one.
func (m *mirror) sync() error {
	seen := map[string]bool{}
	err := filepath.WalkDir(m.src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // an unreadable entry: the control plane reports it from the user's directory's copy
		}
		rel, _ := filepath.Rel(m.src, path)
		if rel == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		seen[rel] = true
		out := filepath.Join(m.dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o750)
		}
		data, err := os.ReadFile(path) //nolint:gosec // the user's own config directory
		if err != nil {
			return nil //nolint:nilerr // as above
		}
		if ext := filepath.Ext(rel); ext == ".yaml" || ext == ".yml" {
			data = rewriteWorkloadEntries(data, m.addrs)
		}
		if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, data) {
			return nil
		}
		tmp := out + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil { //nolint:gosec // G703: a path inside the mirror, from a walk of the user's own directory
			return err
		}
		return os.Rename(tmp, out) // atomic: the control plane never reads half a file
	})
	if err != nil {
		return fmt.Errorf("mirroring %s for the control plane: %w", m.src, err)
	}
	// Files the user removed go from the mirror too (deepest first).
	var stale []string
	_ = filepath.WalkDir(m.dst, func(path string, _ fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(m.dst, path); err == nil && rel != "." && !seen[rel] {
			stale = append(stale, path)
		}
		return nil
	})
	slices.Reverse(stale)
	for _, p := range stale {
		_ = os.RemoveAll(p)
	}
	return nil
}

// follow re-syncs every interval until ctx ends; errors go to report.
func (m *mirror) follow(ctx context.Context, interval time.Duration, report func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := m.sync()
		if msg := fmt.Sprint(err); err != nil && msg != last {
			report(err)
			last = msg
		} else if err == nil {
			last = ""
		}
	}
}

// rewriteWorkloadEntries replaces, in every WorkloadEntry of data listed in addrs, the value
// of spec.address with its pod address and the lucid.dev/app-address annotation's value with
// 127.0.0.1. Everything else stays byte for byte; data that does not parse stays as it is
// (the control plane reports the error, naming the user's file and line).
func rewriteWorkloadEntries(data []byte, addrs map[string]string) []byte {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var edits []scalarEdit
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break // the end, or a document that does not parse: the control plane says which
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if scalar(mapValue(root, "kind")) != "WorkloadEntry" {
			continue
		}
		meta := mapValue(root, "metadata")
		ns := scalar(mapValue(meta, "namespace"))
		if ns == "" {
			ns = "default"
		}
		addr, ok := addrs[ns+"/"+scalar(mapValue(meta, "name"))]
		if !ok {
			continue
		}
		if n := mapValue(mapValue(root, "spec"), "address"); n != nil && n.Kind == yaml.ScalarNode {
			edits = append(edits, scalarEdit{n, addr})
		}
		if n := mapValue(mapValue(meta, "annotations"), AnnotationAppAddress); n != nil && n.Kind == yaml.ScalarNode {
			edits = append(edits, scalarEdit{n, "127.0.0.1"})
		}
	}
	if len(edits) == 0 {
		return data
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	// Right to left within a line, so earlier columns stay valid.
	slices.SortFunc(edits, func(a, b scalarEdit) int {
		if a.n.Line != b.n.Line {
			return a.n.Line - b.n.Line
		}
		return b.n.Column - a.n.Column
	})
	for _, e := range edits {
		if e.n.Line < 1 || e.n.Line > len(lines) {
			continue
		}
		line := lines[e.n.Line-1]
		start := e.n.Column - 1
		width := len(e.n.Value)
		quoted := e.n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
		if quoted {
			width += 2
		}
		if start < 0 || start+width > len(line) {
			continue
		}
		value := e.value
		if quoted {
			value = `"` + value + `"`
		}
		lines[e.n.Line-1] = slices.Concat(line[:start], []byte(value), line[start+width:])
	}
	return bytes.Join(lines, nil)
}

type scalarEdit struct {
	n     *yaml.Node
	value string
}

// mapValue is the value node of key in mapping node m (nil if absent).
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}
