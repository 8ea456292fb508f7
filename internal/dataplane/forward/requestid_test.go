package forward

import (
	"encoding/hex"
	"math/rand/v2"
	"regexp"
	"testing"
)

// A generated x-request-id is a version 4 UUID in its text form (what Envoy generates),
// its digits those of hex.Encode.
func TestRequestIDIsUUIDv4(t *testing.T) {
	form := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if !form.MatchString(id) || seen[id] {
			t.Fatalf("request id %q: not a version 4 UUID, or seen before", id)
		}
		seen[id] = true
	}
	for _, u := range [][16]byte{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, randomBytes()} {
		h := hex.EncodeToString(u[:])
		want := h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		if got := formatUUID(&u); string(got[:]) != want {
			t.Fatalf("formatUUID(%x) = %s, want %s", u, got, want)
		}
	}
}

func randomBytes() (u [16]byte) {
	for i := range u {
		u[i] = byte(rand.Uint32())
	}
	return u
}
