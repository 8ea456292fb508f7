package authz

// RequestBody says whether an ext_authz filter of the chain sends the request body to its
// authorization server, and how the proxy must buffer it before CheckHTTP: at most
// maxBytes (the largest of the filters' limits), a longer body sent cut when every such
// filter allows a partial message, else refused with 413.
func (c *Chain) RequestBody() (want bool, maxBytes uint32, partial bool) {
	if c.Empty() {
		return false, 0, false
	}
	partial = true
	for _, s := range c.steps {
		if s.ext == nil {
			continue
		}
		w, m, p := s.ext.RequestBody()
		if !w {
			continue
		}
		want = true
		maxBytes = max(maxBytes, m)
		partial = partial && p
	}
	return want, maxBytes, want && partial
}
