// Package file is the directory config source: it reads a directory of Istio YAML
// through package config, watches it by polling content hashes (reading again only the
// files whose stat changed), and keeps serving the last good version of an object that
// became invalid. It sits at the top of the control-plane flow:
//
//	source/file → config → store → model → translate → ads
package file

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// DefaultInterval is how often Run scans the directory.
const DefaultInterval = 200 * time.Millisecond

// KeepingLastGood is the Warning message for an object whose new version is
// invalid while its previous valid version keeps serving.
const KeepingLastGood = "keeping the last good version"

// Source watches one directory of Istio YAML.
//
// Load and Run may be called from different goroutines; scans are serialized.
type Source struct {
	dir string
	log *slog.Logger

	// Interval is how often Run scans; zero means DefaultInterval. Set it before Run.
	Interval time.Duration

	mu      sync.Mutex                // guards everything below
	hash    [sha256.Size]byte         // content hash of the last scan
	creds   [sha256.Size]byte         // credentialNames of the last scan (credentials.go)
	scanned bool                      // a scan has happened (hash is meaningful)
	good    map[string]*config.Object // objects served after the last scan, by Key
	gone    map[string]bool           // files that served objects and were missing at the last scan
	parsed  config.ParseCache         // each file's last parse, by content
	reader  config.DirReader          // reads only the files that changed since the last scan
}

// New returns a Source for dir. log may be nil.
func New(dir string, log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{dir: dir, log: log.With("dir", dir)}
}

// Load does one scan and returns the current valid objects (applying last-good
// retention) and all diagnostics.
func (s *Source) Load() ([]*config.Object, []config.Diagnostic) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, rdiags := s.reader.Read(s.dir)
	s.hash, s.creds, s.scanned = contentHash(files, rdiags), credentialNames(s.dir), true
	return s.apply(files, rdiags, false)
}

// Run scans dir every Interval until ctx ends, calling onChange with the full
// object set and all diagnostics once at start and whenever the directory's
// content changed. onChange runs on Run's goroutine. Run returns nil when ctx ends.
func (s *Source) Run(ctx context.Context, onChange func([]*config.Object, []config.Diagnostic)) error {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	objs, diags := s.Load()
	s.log.Info("config loaded", "objects", len(objs), "diagnostics", len(diags))
	onChange(objs, diags)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if objs, diags, changed := s.rescan(); changed {
			s.log.Info("config changed", "objects", len(objs), "diagnostics", len(diags))
			onChange(objs, diags)
		}
	}
}

// rescan reads the directory and applies it only if its content hash changed.
func (s *Source) rescan() ([]*config.Object, []config.Diagnostic, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, rdiags := s.reader.Read(s.dir)
	h, creds := contentHash(files, rdiags), credentialNames(s.dir)
	if s.scanned && h == s.hash && creds == s.creds && len(s.gone) == 0 {
		return nil, nil, false
	}
	s.hash, s.creds, s.scanned = h, creds, true
	objs, diags := s.apply(files, rdiags, true)
	return objs, diags, true
}

func contentHash(files []config.File, diags []config.Diagnostic) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	for _, d := range diags {
		fmt.Fprintf(h, "%s\x00", d.String())
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// apply parses files and applies last-good retention against s.good. s.mu held.
//
// What cannot be read keeps its last good objects (safety.go): the whole directory, a
// file, a file cut off in the middle of a line; of an object defined twice, the
// definition serving wins. A previously good object that is missing from the new set
// keeps serving when
//   - an Error names it (its new version is invalid), or
//   - its file is still there but has an error that names no object (malformed
//     YAML, a document without kind or name): we cannot tell which object broke.
//
// It is dropped when its file is gone or its file parsed cleanly without it. With
// confirmGone (the watch loop), a file that disappeared keeps its objects for one more
// scan and is removed only if it is still missing then: a file replaced by unlinking and
// creating it again (git checkout does) is missing for a moment, and its objects must
// not be withdrawn from the mesh and pushed back.
func (s *Source) apply(files []config.File, rdiags []config.Diagnostic, confirmGone bool) ([]*config.Object, []config.Diagnostic) {
	dirGone, unread := unreadable(rdiags)
	if dirGone {
		return s.keepAll(rdiags) // s.good unchanged: the next readable scan compares with it
	}
	objs, diags := s.parseFiles(files, unread)
	diags = append(rdiags, diags...)
	objs, gdiags := config.ResolveGatewayFiles(s.dir, objs) // certificate paths: local mode only
	diags = append(diags, gdiags...)

	current := make(map[string]*config.Object, len(objs))
	for _, o := range objs {
		current[o.Key()] = o
	}
	present := make(map[string]bool, len(files)+len(unread))
	for _, f := range files {
		present[f.Name] = true
	}
	for f := range unread {
		present[f] = true
	}
	rejected := map[string]bool{}
	broken := map[string]bool{}
	for _, d := range diags {
		if d.Level != config.Error {
			continue
		}
		if d.Kind != "" && d.Name != "" {
			rejected[fmt.Sprintf("%s %s/%s", d.Kind, d.Namespace, d.Name)] = true
		} else {
			broken[d.File] = true
		}
	}
	gone := map[string]bool{}
	var missing []string // usually none: only these need looking at, in a stable order
	for k := range s.good {
		if _, ok := current[k]; !ok {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		prev := s.good[k]
		if !present[prev.File] {
			if confirmGone && !s.gone[prev.File] {
				gone[prev.File] = true
				objs = append(objs, prev)
				current[k] = prev
			}
			continue
		}
		if rejected[k] || broken[prev.File] {
			objs = append(objs, prev)
			current[k] = prev
			diags = append(diags, config.Diagnostic{Level: config.Warning, File: prev.File, Line: prev.Line,
				Kind: prev.Kind, Namespace: prev.Namespace, Name: prev.Name, Message: KeepingLastGood})
		}
	}
	sortByPlace(objs)
	s.good, s.gone = current, gone
	return objs, diags
}

func sortedKeys(m map[string]*config.Object) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
