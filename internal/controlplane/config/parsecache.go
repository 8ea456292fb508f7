package config

import "crypto/sha256"

// ParseCache is ParseFiles that remembers each file's parse by its content, so a scan of a
// large directory where one file changed parses that one file. The zero ParseCache is
// ready; it is not safe for concurrent use.
type ParseCache struct {
	files map[string]parsedFile
}

type parsedFile struct {
	sum   [sha256.Size]byte
	objs  []*Object
	diags []Diagnostic
}

// ParseFiles is the package's ParseFiles with files whose name and content are unchanged
// since the last call taken from the cache. Objects are shared between calls: they are
// immutable, as every Object.
func (c *ParseCache) ParseFiles(files []File) ([]*Object, []Diagnostic) {
	next := make(map[string]parsedFile, len(files))
	var objs []*Object
	var diags []Diagnostic
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		p, ok := c.files[f.Name]
		if !ok || p.sum != sum {
			o, d := Parse(f.Name, f.Data)
			p = parsedFile{sum: sum, objs: o, diags: d}
		}
		next[f.Name] = p
		objs = append(objs, p.objs...)
		diags = append(diags, p.diags...)
	}
	c.files = next
	return dedupe(objs, diags)
}

// Parse is Parse for one file, taken from the cache when its content is unchanged. Files
// not parsed since the last Forget are dropped by it.
func (c *ParseCache) Parse(f File) ([]*Object, []Diagnostic) {
	sum := sha256.Sum256(f.Data)
	if p, ok := c.files[f.Name]; ok && p.sum == sum {
		return p.objs, p.diags
	}
	o, d := Parse(f.Name, f.Data)
	if c.files == nil {
		c.files = map[string]parsedFile{}
	}
	c.files[f.Name] = parsedFile{sum: sum, objs: o, diags: d}
	return o, d
}

// Keep forgets every file but those named.
func (c *ParseCache) Keep(files []File) {
	keep := make(map[string]bool, len(files))
	for _, f := range files {
		keep[f.Name] = true
	}
	for name := range c.files {
		if !keep[name] {
			delete(c.files, name)
		}
	}
}
