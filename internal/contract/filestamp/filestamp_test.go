package filestamp

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestStampTellsEveryKindOfChange(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the change time and inode are read on Linux only")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	first := stat(t, path)
	if again := stat(t, path); again != first {
		t.Fatal("an untouched file changed its stamp")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past the clock's granularity
	if err := os.WriteFile(path, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if stat(t, path) == first {
		t.Fatal("a same-size rewrite with its modification time restored kept the stamp")
	}
	before := stat(t, path)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if stat(t, path) == before {
		t.Fatal("a file replaced by a rename kept the stamp")
	}
}

func TestSettled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := stat(t, path)
	if s.Settled(time.Now(), time.Second) {
		t.Fatal("a file written just now counts as settled")
	}
	if !s.Settled(time.Now().Add(2*time.Second), time.Second) {
		t.Fatal("a file quiet for two seconds is not settled")
	}
}

func stat(t *testing.T, path string) Stamp {
	t.Helper()
	s, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
