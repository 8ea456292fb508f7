package http1

import "net/http"

// Value is h.Get(key) for a key already in canonical form (a constant such as
// "Content-Type"): the first value, or "". It skips the canonicalization Get runs on
// every call, which the proxy's per-request lookups would pay each time.
func Value(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}
