package file

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// Config safety: a careless edit must never take down what serves. What cannot be read
// is not what the user meant, so it keeps the last good configuration, and says so:
//
//   - the directory vanished or cannot be read: every object keeps serving;
//   - a file cannot be read: its objects keep serving;
//   - a file ends in the middle of a line, or is empty, and lost objects since the last
//     scan (a truncated file, or one still being written): its last good objects keep
//     serving, none of its new content is used (a removed file removes its objects);
//   - an object defined in two files: the definition already serving wins, the newcomer
//     is rejected with an error naming both files (Istio orders by creation time, then
//     name; files have no creation time, and an object that serves is the oldest). When
//     neither serves, the first in file order wins.

// Messages of the diagnostics.
const (
	keepingAll       = "keeping the last good configuration"
	keepingFile      = "keeping this file's last good objects"
	duplicateMessage = "duplicate object: %s is already defined at %s:%d, which wins (the definition already serving is kept); this definition is rejected"
)

// unreadable reports whether the directory itself could not be read, and which files
// could not.
func unreadable(rdiags []config.Diagnostic) (dir bool, files map[string]bool) {
	files = map[string]bool{}
	for _, d := range rdiags {
		if d.Level != config.Error {
			continue
		}
		if d.File == "" {
			dir = true
		} else {
			files[d.File] = true
		}
	}
	return dir, files
}

// keepAll is the result of a scan that could not read the directory: the objects served
// so far, with the errors and a warning saying they keep serving.
func (s *Source) keepAll(rdiags []config.Diagnostic) ([]*config.Object, []config.Diagnostic) {
	objs := make([]*config.Object, 0, len(s.good))
	for _, k := range sortedKeys(s.good) {
		objs = append(objs, s.good[k])
	}
	sortByPlace(objs)
	diags := append([]config.Diagnostic(nil), rdiags...)
	if len(objs) > 0 {
		diags = append(diags, config.Diagnostic{Level: config.Warning, File: s.dir,
			Message: fmt.Sprintf("%s (%d objects) until the directory can be read again", keepingAll, len(objs))})
	}
	return objs, diags
}

// lastGoodOf are the objects of file served after the last scan.
func (s *Source) lastGoodOf(file string) []*config.Object {
	var out []*config.Object
	for _, k := range sortedKeys(s.good) {
		if o := s.good[k]; o.File == file {
			out = append(out, o)
		}
	}
	return out
}

// truncated reports whether f looks cut off: it is empty or does not end with a newline,
// and lost objects it served (parsed holds what it defines now). The diagnostic names the line
// it ends on.
func (s *Source) truncated(f config.File, parsed []*config.Object) (config.Diagnostic, bool) {
	if len(f.Data) > 0 && f.Data[len(f.Data)-1] == '\n' {
		return config.Diagnostic{}, false
	}
	now := map[string]bool{}
	for _, o := range parsed {
		now[o.Key()] = true
	}
	var lost []string
	for _, o := range s.lastGoodOf(f.Name) {
		if !now[o.Key()] {
			lost = append(lost, o.Key())
		}
	}
	if len(lost) == 0 {
		return config.Diagnostic{}, false
	}
	if len(f.Data) == 0 {
		// Empty: a file being rewritten in place (git checkout, an editor that truncates
		// before it writes) is empty for a moment; removing the file removes its objects.
		return config.Diagnostic{Level: config.Error, File: f.Name,
			Message: fmt.Sprintf("the file is empty and no longer defines %v: still being written? %s until it has content again, or remove the file to remove them",
				lost, keepingFile)}, true
	}
	line := bytes.Count(f.Data, []byte("\n")) + 1
	return config.Diagnostic{Level: config.Error, File: f.Name, Line: line,
		Message: fmt.Sprintf("the file ends in the middle of line %d (no newline at the end) and no longer defines %v: "+
			"truncated, or still being written? %s until it ends with a newline", line, lost, keepingFile)}, true
}

// parseFiles parses each file on its own, standing in the last good objects of files
// that cannot be read or look truncated, then resolves definitions of one object in
// several files (dedupe).
func (s *Source) parseFiles(files []config.File, broken map[string]bool) ([]*config.Object, []config.Diagnostic) {
	var objs []*config.Object
	var diags []config.Diagnostic
	for name := range broken {
		objs = append(objs, s.lastGoodOf(name)...)
		if len(s.lastGoodOf(name)) > 0 {
			diags = append(diags, config.Diagnostic{Level: config.Warning, File: name, Message: keepingFile + " until it can be read again"})
		}
	}
	defer s.parsed.Keep(files)
	for _, f := range files {
		o, d := s.parsed.Parse(f) // only changed files are parsed again
		if td, cut := s.truncated(f, o); cut {
			objs = append(objs, s.lastGoodOf(f.Name)...)
			diags = append(diags, td)
			continue
		}
		objs = append(objs, o...)
		diags = append(diags, d...)
	}
	sortByPlace(objs)
	return s.dedupe(objs, diags)
}

// dedupe keeps one definition per object: the one serving now, else the first in file
// order; every other is rejected with an error that names both places.
func (s *Source) dedupe(objs []*config.Object, diags []config.Diagnostic) ([]*config.Object, []config.Diagnostic) {
	winner := map[string]*config.Object{}
	for _, o := range objs {
		k := o.Key()
		w, ok := winner[k]
		switch {
		case !ok:
			winner[k] = o
		case s.serving(o) && !s.serving(w):
			winner[k] = o
		}
	}
	out := objs[:0]
	for _, o := range objs {
		w := winner[o.Key()]
		if w == o {
			out = append(out, o)
			continue
		}
		diags = append(diags, config.Diagnostic{Level: config.Error, File: o.File, Line: o.Line, Kind: o.Kind,
			Namespace: o.Namespace, Name: o.Name, Message: fmt.Sprintf(duplicateMessage, o.Key(), w.File, w.Line)})
	}
	return out, diags
}

// serving reports whether o is defined in the file the object served from after the
// last scan.
func (s *Source) serving(o *config.Object) bool {
	prev, ok := s.good[o.Key()]
	return ok && prev.File == o.File
}

func sortByPlace(objs []*config.Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		if objs[i].File != objs[j].File {
			return objs[i].File < objs[j].File
		}
		return objs[i].Line < objs[j].Line
	})
}
