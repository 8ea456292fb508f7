package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract/filestamp"
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
	return (&DirReader{}).Read(dir)
}

// DirReader is ReadDir for a directory read again and again (the file source polls its
// directory several times a second): a file that is, by its stat, the one read last time
// is not read again. A file counts as unchanged when its size, modification and change
// times (and inode where the platform has them) are those of the last read and it had not
// changed for a second before that read; a file written within the clock's granularity of
// a read could otherwise keep its times and hide a second write. The zero DirReader is
// ready; it is not safe for concurrent use.
type DirReader struct {
	files map[string]readFile // by path, from the last Read
}

type readFile struct {
	stamp  filestamp.Stamp
	stable bool // unchanged for stableAfter before it was read
	data   []byte
}

// stableAfter is how long a file must have been unchanged when it was read for its stat to
// stand for its content.
var stableAfter = time.Second

// Read is ReadDir, reusing what the last Read read of files that did not change.
func (r *DirReader) Read(dir string) ([]File, []Diagnostic) {
	prev := r.files
	r.files = make(map[string]readFile, len(prev))
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
		data, err := r.readFile(path, prev)
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

// readFile returns path's content: prev's when the file is the one read then, else read now.
func (r *DirReader) readFile(path string, prev map[string]readFile) ([]byte, error) {
	// Symlinks are followed on purpose (Kubernetes ConfigMap mounts are symlinks), so
	// not os.Root; the directory is the user's own config, not untrusted input.
	stamp, err := filestamp.Stat(path)
	if err != nil {
		return os.ReadFile(path) // the error says what opening it says
	}
	if p, ok := prev[path]; ok && p.stable && p.stamp == stamp {
		r.files[path] = p
		return p.data, nil
	}
	readAt := time.Now()
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if after, err := filestamp.Stat(path); err == nil && after == stamp { // not changed while read
		r.files[path] = readFile{stamp: stamp, stable: stamp.Settled(readAt, stableAfter), data: data}
	}
	return data, nil
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
