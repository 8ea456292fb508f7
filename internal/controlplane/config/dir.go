package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MeshConfigFile is the file name LoadDir skips: it holds MeshConfig, not objects.
const MeshConfigFile = "meshconfig.yaml"

// File is one config file's name (relative to the config directory, slash-separated)
// and content.
type File struct {
	Name string
	Data []byte
}

// ReadDir reads every *.yaml/*.yml file under dir, recursively, sorted by name,
// skipping hidden files and directories and any file named meshconfig.yaml.
// Unreadable files and a missing directory are Error diagnostics.
func ReadDir(dir string) ([]File, []Diagnostic) {
	var files []File
	var diags []Diagnostic
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, path)
		if rel == "." {
			rel = filepath.Base(path) // dir is a file: name it, not "."
		}
		rel = filepath.ToSlash(rel)
		if err != nil && path == dir {
			diags = append(diags, Diagnostic{Level: Error, Message: "cannot read config directory: " + err.Error()})
			return nil
		}
		if err != nil {
			diags = append(diags, Diagnostic{Level: Error, File: rel, Message: "cannot read: " + err.Error()})
			if d != nil && d.IsDir() && path != dir {
				return fs.SkipDir
			}
			return nil
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isConfigFile(d.Name()) {
			return nil
		}
		// Symlinks are followed on purpose (Kubernetes ConfigMap mounts are symlinks), so
		// not os.Root; the directory is the user's own config, not untrusted input.
		data, err := os.ReadFile(path) //nolint:gosec // G122: see above
		if err != nil && path == dir {
			diags = append(diags, Diagnostic{Level: Error, Message: "cannot read config directory: " + err.Error()})
			return nil
		}
		if err != nil {
			diags = append(diags, Diagnostic{Level: Error, File: rel, Message: "cannot read: " + err.Error()})
			return nil
		}
		files = append(files, File{Name: rel, Data: data})
		return nil
	})
	if err != nil {
		diags = append(diags, Diagnostic{Level: Error, File: dir, Message: "cannot read config directory: " + err.Error()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, diags
}

func isConfigFile(name string) bool {
	if name == MeshConfigFile {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// ParseFiles parses every file and rejects objects defined twice across files (the
// first, in file order, wins; the error names both places).
func ParseFiles(files []File) ([]*Object, []Diagnostic) {
	return ParseFilesWith(files, Options{})
}

// ParseFilesWith is ParseFiles with options.
func ParseFilesWith(files []File, opts Options) ([]*Object, []Diagnostic) {
	var objs []*Object
	var diags []Diagnostic
	for _, f := range files {
		o, d := ParseWith(f.Name, f.Data, opts)
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	return dedupe(objs, diags)
}

// LoadDir loads every *.yaml/*.yml file under dir (recursively, sorted, skipping
// hidden files/dirs and any file named meshconfig.yaml). File names in diagnostics
// are relative to dir.
func LoadDir(dir string) ([]*Object, []Diagnostic) {
	files, diags := ReadDir(dir)
	objs, d := ParseFiles(files)
	return objs, append(diags, d...)
}
