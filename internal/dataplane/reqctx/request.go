package reqctx

import (
	"context"
	"net/http"
)

// Request is an http.Request that lives in a larger object with its context (a Ctx of the
// same object) and is used again request after request. net/http sets a request's
// context only by copying the request (WithContext), so Request keeps a blank copy with
// the context, made once, and starts each use from it.
type Request struct {
	req, blank http.Request
	ready      bool
}

// Blank returns the request emptied but for its context, ctx, which must be the same on
// every call (the larger object's own Ctx).
func (r *Request) Blank(ctx context.Context) *http.Request {
	if !r.ready {
		r.blank, r.ready = *new(http.Request).WithContext(ctx), true
	}
	r.req = r.blank
	return &r.req
}

// Clear drops what the last request refers to (header map, URL, body), keeping the blank.
func (r *Request) Clear() { r.req = r.blank }
