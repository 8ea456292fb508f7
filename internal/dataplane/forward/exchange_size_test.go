package forward

import (
	"testing"
	"unsafe"
)

// The exchange is allocated once per request: it stays within the 1,280-byte size class
// (the next is 1,408), so a field added to it is weighed against that.
func TestExchangeSize(t *testing.T) {
	if n := unsafe.Sizeof(exchange{}); n > 1280 {
		t.Fatalf("exchange is %d bytes, more than the 1280-byte size class it is kept in", n)
	}
}
