package testutil

import (
	"encoding/binary"
	"os"
	"testing"
)

// MappedPages counts the pages from addr on, n of them, that are mapped in this process
// (/proc/self/pagemap, bit 63 of each entry: present): what a page fault mapped. It skips
// the test where pagemap cannot be read.
func MappedPages(t testing.TB, addr uintptr, n int) int {
	t.Helper()
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skipf("no pagemap: %v", err)
	}
	defer pm.Close()
	entries := make([]byte, 8*n)
	if _, err := pm.ReadAt(entries, int64(addr/uintptr(os.Getpagesize())*8)); err != nil {
		t.Skipf("reading pagemap: %v", err)
	}
	present := 0
	for i := 0; i+8 <= len(entries); i += 8 {
		if binary.NativeEndian.Uint64(entries[i:])>>63 != 0 {
			present++
		}
	}
	return present
}
