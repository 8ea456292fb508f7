package forward

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
)

// The keep-alive race, with no retry policy configured (docs/scenarios.md, scenario 2).
//
// An upstream may close an idle keep-alive connection just as the proxy sends a request on
// it. The pool discards connections it sees closed (pool/h1.go); what slips through fails
// on the reused connection before any response byte. Such a request is sent once more, on
// a new connection to the same host, when sending it again cannot do harm:
//
//   - its method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE: RFC 9110 §9.2.2),
//   - or it carries an Idempotency-Key (or X-Idempotency-Key) header,
//   - or provably no byte of it was written (the kernel refused the first write).
//
// A request that may have reached the application (a POST whose bytes were written) is
// never sent twice: it fails with 503 UC and an x-lucid-error that says why it was not
// retried. Each save counts in upstream_rq_reused_conn_retry
// (lucid_upstream_reused_conn_retries_total) and adds "reused-conn-retry" to the access
// log. This retry is not one of the route's retries: it is not counted against
// num_retries, has no back-off, and keeps the attempt number.

// noteReusedConnRetry is the access-log note of a save.
const noteReusedConnRetry = "reused-conn-retry"

// send runs attempt a: RoundTrip, and the retry on a new connection described above.
func (x *exchange) send(pl *pool.Pool, a *attempt, body io.ReadCloser) (*http.Response, error) {
	req := x.request(a, body) // prepare.go
	cb := hostCounters(a.host)
	resp, err := pl.RoundTrip(req, a.host.Addr, cb, a) // the pool tells a its connection
	if err == nil {
		return resp, nil
	}
	var re *pool.ResetError // declared here: errors.As makes it escape, an allocation
	if !errors.As(err, &re) || !re.Reused || re.ResponseStarted {
		return resp, err
	}
	why := replayable(req, re)
	if why == "" {
		x.notRetried.set(reusedNotResent, "; not retried on a new connection: "+req.Method+
			" is not idempotent and the request was sent, so the upstream may have processed it (send an Idempotency-Key header to allow the retry)")
		return nil, err
	}
	body = nil
	if x.up.body != nil {
		v := x.up.body.view()
		if v == nil {
			x.notRetried.set(reusedNotResent, "; not retried on a new connection: the request body was not kept for replay (over 64 KiB or partly sent)")
			return nil, err
		}
		body = v
	}
	a.stats.UpstreamRqReusedConnRetry.Add(1)
	x.info.Notes = append(x.info.Notes, noteReusedConnRetry)
	if x.f.log.Enabled(req.Context(), slog.LevelDebug) {
		x.f.log.Debug("request failed on a reused connection before any response byte; retrying on a new connection",
			"host", a.host.Addr, "method", req.Method, "replayable", why, "err", re.Err)
	}
	return pl.RoundTripNew(x.request(a, body), a.host.Addr, cb, a)
}

// replayable says why req may be sent again after failing on a reused connection, or ""
// when it may not.
func replayable(req *http.Request, re *pool.ResetError) string {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return "idempotent method"
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return "Idempotency-Key"
	}
	if _, ok := req.Header["X-Idempotency-Key"]; ok {
		return "Idempotency-Key"
	}
	if re.BeforeHeaders {
		return "nothing written"
	}
	return ""
}
