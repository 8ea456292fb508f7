package strslab

import (
	"runtime"
	"strconv"
	"testing"
)

// A string alone keeps its block: once garbage collections have emptied the pool (the
// blocks' only other reference), the blocks made for later strings never reuse its bytes.
func TestStringsOutliveThePool(t *testing.T) {
	kept := make([]string, 0, 200)
	for i := range cap(kept) {
		kept = append(kept, String([]byte("x-request-id: "+strconv.Itoa(i*7919))))
	}
	for range 3 {
		runtime.GC() // the pool drops its blocks; only the strings point into them
	}
	for i := range 20000 {
		_ = String([]byte("later head " + strconv.Itoa(i)))
	}
	runtime.GC()
	for i, s := range kept {
		if want := "x-request-id: " + strconv.Itoa(i*7919); s != want {
			t.Fatalf("string %d is %q, was %q", i, s, want)
		}
	}
}
