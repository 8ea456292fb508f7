//go:build linux

package faultaround

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TestFaultsMapOnePage checks the mechanism on a file of its own: of two private
// read-only mappings of one cached file, a touch maps the pages around it in the plain
// one (the kernel's fault-around: 64 KiB, or on Linux 6.18 the whole large folio of the
// page cache where it fits the page table) and the touched page alone in the registered
// one.
func TestFaultsMapOnePage(t *testing.T) {
	const pages = 256
	page := os.Getpagesize()
	name := filepath.Join(t.TempDir(), "pages")
	if err := os.WriteFile(name, bytes.Repeat([]byte{7}, pages*page), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(name); err != nil { // every page in the page cache
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapFile := func() []byte {
		b, err := unix.Mmap(int(f.Fd()), 0, pages*page, unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Munmap(b) })
		return b
	}
	plain, registered := mapFile(), mapFile()
	start := addrOf(registered)
	if err := Off([]Range{{Start: start, End: start + uintptr(len(registered))}}); err != nil {
		t.Skipf("fault-around cannot be turned off here: %v", err)
	}
	if plain[100*page] != 7 {
		t.Fatal("the plain mapping does not show the file")
	}
	t.Logf("one touch mapped %d pages of the plain mapping", testutil.MappedPages(t, addrOf(plain), pages))
	// Neighbours, then a page far off: each touch maps exactly one more page.
	for i, p := range []int{100, 101, 99, 180} {
		if registered[p*page] != 7 {
			t.Fatal("the registered mapping does not show the file")
		}
		if got := testutil.MappedPages(t, addrOf(registered), pages); got != i+1 {
			t.Fatalf("after touching %d pages of the registered mapping %d are mapped, want %d", i+1, got, i+1)
		}
	}
}

func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

func TestProxyProcess(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"lucid", "sidecar", "--ip", "10.0.0.1"}, true},
		{[]string{"lucid", "gateway"}, true},
		{[]string{"lucid", "discovery"}, false},
		{[]string{"lucid"}, false},
		{[]string{"lucid", "up", "sidecar"}, false},
		{[]string{"lucid", "sidecar", "--keep-startup-pages"}, false},
		{[]string{"lucid", "sidecar", "--keep-startup-pages=true"}, false},
		{[]string{"lucid", "sidecar", "--keep-startup-pages=false"}, true},
		{[]string{"lucid", "sidecar", "--", "--keep-startup-pages"}, true},
	} {
		if got := proxyProcess(tt.args); got != tt.want {
			t.Errorf("proxyProcess(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

func TestReadOnlyOf(t *testing.T) {
	const maps = `00400000-01563000 r-xp 00000000 fe:00 42                               /usr/bin/lucid
01563000-02acd000 r--p 01163000 fe:00 42                               /usr/bin/lucid
02acd000-02b98000 rw-p 026cd000 fe:00 42                               /usr/bin/lucid
7f0000000000-7f0000100000 r--p 00000000 fe:00 77                       /usr/lib/other.so
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
7f0000300000-7f0000400000 r--s 00000000 fe:00 42                       /usr/bin/lucid
zz-7f0000500000 r--p 00000000 fe:00 42                                 /usr/bin/lucid
`
	got := readOnlyOf(maps, 42)
	want := []Range{{0x400000, 0x1563000}, {0x1563000, 0x2acd000}}
	if !slices.Equal(got, want) {
		t.Errorf("readOnlyOf = %x, want %x (code and read-only data of inode 42; not data, shared, other files or a bad line)", got, want)
	}
}
