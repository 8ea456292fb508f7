package extauthz

// RequestBody is the filter's with_request_body: whether the check carries the request
// body, at most how many bytes (max_request_bytes), and whether a longer body is sent cut
// (allow_partial_message) rather than refused with 413.
func (c *Client) RequestBody() (want bool, maxBytes uint32, partial bool) {
	return c.cfg.WithRequestBody, c.cfg.MaxRequestBytes, c.cfg.AllowPartialMessage
}
