package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// readOne reads dir with r and returns its only file.
func readOne(t *testing.T, r *DirReader, dir string) File {
	t.Helper()
	files, diags := r.Read(dir)
	if len(diags) > 0 || len(files) != 1 {
		t.Fatalf("read %s: files %v, diagnostics %v", dir, files, diags)
	}
	return files[0]
}

func sameBytes(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

func TestDirReaderReadsOnlyWhatChanged(t *testing.T) {
	prev := stableAfter
	stableAfter = 50 * time.Millisecond
	t.Cleanup(func() { stableAfter = prev })
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var r DirReader

	write("kind: A\n")
	time.Sleep(2 * stableAfter)
	first := readOne(t, &r, dir)
	if again := readOne(t, &r, dir); string(again.Data) != "kind: A\n" || !sameBytes(first.Data, again.Data) {
		t.Fatalf("an unchanged file was read again (or changed): %q", again.Data)
	}

	// Same size, rewritten in place: the times differ, so it is read.
	write("kind: B\n")
	if got := readOne(t, &r, dir); string(got.Data) != "kind: B\n" {
		t.Fatalf("a file rewritten in place: got %q", got.Data)
	}

	// Rewritten with its old modification time restored (cp -p, rsync -t): the change
	// time still tells.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * stableAfter)
	readOne(t, &r, dir) // stable now
	write("kind: C\n")
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := readOne(t, &r, dir); string(got.Data) != "kind: C\n" {
		t.Fatalf("a file rewritten with its modification time restored: got %q", got.Data)
	}

	// Replaced by a rename (an editor's or kubectl's atomic write).
	time.Sleep(2 * stableAfter)
	readOne(t, &r, dir)
	tmp := filepath.Join(dir, ".a.yaml.tmp")
	if err := os.WriteFile(tmp, []byte("kind: D\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if got := readOne(t, &r, dir); string(got.Data) != "kind: D\n" {
		t.Fatalf("a file replaced by a rename: got %q", got.Data)
	}
}

// A file that changed just before it was read is read again next time, even when its stat
// looks the same: a second write within the clock's granularity keeps the times.
func TestDirReaderRereadsRecentlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("kind: A\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var r DirReader // stableAfter: 1 s, so the file just written is not trusted yet
	first := readOne(t, &r, dir)
	if again := readOne(t, &r, dir); sameBytes(first.Data, again.Data) {
		t.Fatal("a file written just before the read was taken from the last read")
	}
}
