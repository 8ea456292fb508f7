package http1

import (
	"net/http"

	"golang.org/x/net/http/httpguts"
)

// Value is h.Get(key) for a key already in canonical form (a constant such as
// "Content-Type"): the first value, or "". It skips the canonicalization Get runs on
// every call, which the proxy's per-request lookups would pay each time.
func Value(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// NameForm says whether name is a field name (a token, RFC 9110 §5.1) and whether it is
// already in the canonical form net/textproto gives header keys ("Content-Type": the first
// letter and every letter after a hyphen upper case, the others lower case), in one pass.
// A parser that finds both can use the received bytes as the map key as they are.
func NameForm(name []byte) (token, canonical bool) {
	if len(name) == 0 {
		return false, false
	}
	canonical, upper := true, true
	for _, c := range name {
		if !tokenByte[c] {
			return false, false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	return true, canonical
}

// tokenByte: the bytes a token may hold (tchar, RFC 9110 §5.6.2).
var tokenByte = func() (t [256]bool) {
	for c := range 128 {
		t[c] = httpguts.IsTokenRune(rune(c))
	}
	return t
}()

// ValidName says whether name is a field name (a token), as httpguts.ValidHeaderFieldName
// does, a byte at a time.
func ValidName(name string) bool {
	for i := 0; i < len(name); i++ {
		if !tokenByte[name[i]] {
			return false
		}
	}
	return len(name) > 0
}
