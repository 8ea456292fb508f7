package forward

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// The retry loop: Envoy's router with one UpstreamRequest per try and its RetryState
// (retry.go) between them.
//
// An attempt picks a host (a retry avoids the hosts tried when the policy asks), is
// admitted by the cluster's max_requests breaker (resilience.go), sends the request
// (reused.go), and gets response headers, which go downstream (respond.go) unless the
// policy retries them, or fails (failure.go). Each attempt ends once, when run returns,
// before any back-off: its host and cluster get their active request back and its context
// ends.

// attempt is one try of the upstream request on one host. The exchange holds the current
// one (after the loop, the last). It is the pool's connection observer for its requests.
type attempt struct {
	x    *exchange // whose attempt it is (x.try)
	n    int32     // 1 for the first try
	live bool      // counted in the host's and the cluster's active requests
	// fieldsOnly asks the pool for a plain answer's fields as a list (pool.FieldsAsker):
	// they would go downstream as received (adoptFields), which needs no header map.
	fieldsOnly bool
	answered   bool // the pool said when it read the answer's head (pool.Clock): ust holds it
	host       *cluster.Host
	stats      *cluster.Stats
	// ctx is the attempt's context: rc, a child of the route's bounded by the per-try
	// timeout, which cut ends, with a cause when the host left its cluster (stream.go). An
	// upgrade's is the downstream's (rc nil).
	ctx   context.Context
	rc    *reqctx.Ctx
	start time.Time     // when the request went out (x-envoy-upstream-service-time)
	ust   time.Duration // from start to the answer's head as the pool read it, once answered

	stream     cluster.Stream // stream.go: the response tracked on its host
	streamBody io.Closer      // the tracked response's body (nil: not tracked)

	connMu sync.Mutex
	local  string                   // local address of the latest upstream connection (this or an earlier attempt's), under connMu
	tls    atomic.Pointer[tls.Conn] // the latest upstream connection's TLS, nil when plaintext
}

// begin counts attempt n on host, with context ctx (rc when the attempt has its own, else
// nil), as started: the caller has counted it in the cluster's upstream_rq_active (admit,
// or an upgrade's own count).
func (x *exchange) begin(ctx context.Context, rc *reqctx.Ctx, n int, host *cluster.Host) *attempt {
	a := &x.try
	a.x, a.n, a.host, a.stats, a.ctx, a.rc, a.live = x, int32(n), host, x.cl.Stats(), ctx, rc, true
	a.fieldsOnly = x.answerFieldsOnly()
	host.RequestStart()
	a.stats.UpstreamRqTotal.Add(1)
	a.start, a.answered = time.Now(), false
	return a
}

// Began and Answered are pool.Clock's: the pool takes the attempt's start as the time it
// looks at its idle connections, and says when it read the answer's head.
func (a *attempt) Began() time.Time { return a.start }

func (a *attempt) Answered(at time.Time) { a.answered, a.ust = true, at.Sub(a.start) }

// serviceTime is x-envoy-upstream-service-time: from the attempt's start to the answer's
// head, as the pool read it, or to now.
func (a *attempt) serviceTime() time.Duration {
	if a.answered {
		return a.ust
	}
	return time.Since(a.start)
}

// end gives the attempt's active request back to its host and cluster and ends its
// context. It is the one way an attempt ends; it does nothing the second time.
func (a *attempt) end() {
	if !a.live {
		return
	}
	a.live = false
	a.host.RequestEnd()
	a.stats.UpstreamRqActive.Add(-1)
	a.cut(context.Canceled)
}

// cut ends the attempt's own context with cause (nothing for an upgrade's).
func (a *attempt) cut(cause error) {
	if a.rc != nil {
		a.rc.Cancel(cause)
	}
}

// FieldsOnly is pool.FieldsAsker's: whether a plain answer's fields may come as a list.
func (a *attempt) FieldsOnly() bool { return a.fieldsOnly }

// answerFieldsOnly says whether this exchange's answers would go downstream as received
// when plain (adoptFields' conditions known before the answer), so that the pool need not
// build their header maps: the writer takes fields as received, no hash-policy cookie is
// added, no header operation changes them.
func (x *exchange) answerFieldsOnly() bool {
	_, ok := x.w.(fieldsAdopter)
	return ok && x.setCookie == "" && !x.responseHeaderOps()
}

// UpstreamConn records the upstream connection's local address and TLS
// (pool.ConnObserver). It may run on a transport goroutine; both
// are read when the request ends.
func (a *attempt) UpstreamConn(c net.Conn, local string) {
	if local != "" { // upstream connections are TCP
		a.connMu.Lock()
		a.local = local
		a.connMu.Unlock()
	}
	a.tls.Store(pool.TLSOf(c))
}

// localAddress is %UPSTREAM_LOCAL_ADDRESS%: the latest upstream connection's.
func (a *attempt) localAddress() string {
	a.connMu.Lock()
	defer a.connMu.Unlock()
	return a.local
}

// forward runs the retry loop: attempt after attempt until a response goes downstream, or
// a failure (or the last one) is answered with a local reply.
func (x *exchange) forward(pl *pool.Pool) {
	x.poolKeepsNo = pl.KeepsNoRequest()
	x.applyRetryHeaders()
	ctx, cancel := x.routeContext()
	defer cancel()
	defer x.releaseRetries()
	st := newRetryState(x.policy())
	rs := &st
	var body io.ReadCloser
	if x.up.body != nil {
		body = x.up.body.view()
	}
	var tried []*cluster.Host
	for n := 1; ; n++ {
		a := x.pick(ctx, n, tried)
		if a == nil {
			return
		}
		if body != nil && a.rc != nil {
			cutOnBodyError(body, a.rc.Cancel) // downstream.go: a broken body ends the attempt
		}
		retry, err := x.run(ctx, pl, rs, a, body) // a has ended
		switch {
		case err != nil && x.bodyBroken():
			x.badBody() // downstream.go: 400 DPE, never retried
			return
		case err != nil:
			f, ok := x.classify(err, rs, a)
			if !ok {
				x.downstreamGone()
				return
			}
			x.reportFailure(a.host, err)
			if f.retriable {
				if next, ok := x.retry(ctx, rs, n, false); ok {
					tried, body = append(tried, a.host), next
					continue
				}
				if ctx.Err() != nil && x.r.Context().Err() == nil {
					f = x.routeTimeout()
				}
			}
			x.fail(f, n)
			return
		case retry:
			if next, ok := x.retry(ctx, rs, n, true); ok {
				tried, body = append(tried, a.host), next
				continue
			}
			// The route timeout fired or the client left during the back-off.
			if x.r.Context().Err() != nil {
				x.downstreamGone()
				return
			}
			f := x.routeTimeout()
			f.Explanation += attempts(n)
			x.reply(&f.Reply)
			return
		}
		return
	}
}

// pick begins attempt n on a host picked for it (with the policy's previous_hosts and
// locality preferences over the hosts tried, and the request's hash), after the cluster's
// max_requests breaker admitted it. nil: the request was answered (503 UH or UO).
func (x *exchange) pick(ctx context.Context, n int, tried []*cluster.Host) *attempt {
	pol := x.policy()
	pc := cluster.PickContext{OriginalDst: x.originalDst()}
	if pol != nil && pol.AvoidPreviousHosts {
		pc.Exclude = tried
	}
	if pol != nil && pol.RemoteLocalities && n > 1 {
		pc.RemoteLocalities, pc.Tried = true, tried
	}
	pc.Hash, pc.HasHash = x.requestHash()
	host, err := x.cl.Pick(pc)
	if err != nil {
		x.reply(noHealthy(err))
		return nil
	}
	x.info.UpstreamHost = host.Addr
	x.info.Attempts = n
	x.fillPeer(host)
	if rp := ownUpstream(&x.in, host.Addr, x.cl.Config().Name); rp != nil { // loop.go
		x.reply(rp)
		return nil
	}
	if f, ok := x.admit(); !ok {
		x.reply(&f.Reply)
		return nil
	}
	if x.overConnections(x.cl.Stats().UpstreamRqActive.Load()) { // loop.go: Envoy's default max_connections
		return nil
	}
	// The attempt's context: cut by end, or with a cause when host leaves its cluster
	// (stream.go); the per-try timeout under it ends with it.
	var rc *reqctx.Ctx
	if n == 1 { // the first attempt's lives in the exchange (each attempt needs its own)
		rc = &x.firstCtx
		rc.Init(ctx)
	} else {
		rc = reqctx.New(ctx)
	}
	if pol != nil && pol.PerTryTimeout > 0 {
		rc.CancelAfter(pol.PerTryTimeout, errPerTryTimeout)
	}
	return x.begin(rc, rc, n, host)
}

// run sends attempt a with body and sends the response downstream, unless the retry
// policy retries it: then it is discarded and retry is true. err says why no response
// headers came. a has ended when run returns.
func (x *exchange) run(ctx context.Context, pl *pool.Pool, rs *retryState, a *attempt, body io.ReadCloser) (retry bool, err error) {
	defer a.end()
	resp, err := x.send(pl, a, body) // reused.go
	if err != nil {
		return false, err
	}
	x.charge(resp.StatusCode, a.host)
	x.cl.ReportStatus(a.host, resp.StatusCode)
	if rs.wouldRetryResponse(resp.StatusCode, resp) && x.retryResponse(rs, resp) {
		return true, nil
	}
	if a.n > 1 {
		a.stats.UpstreamRqRetrySuccess.Add(1)
	}
	if x.setCookie != "" {
		pool.FillHeader(resp) // a map of the answer's own fields first (pool.FieldsAsker)
		resp.Header.Add("Set-Cookie", x.setCookie)
	}
	x.respond(ctx, a, resp)
	return false, nil
}

// retryResponse decides whether a response the policy retries is retried: retries left,
// the body kept for replay, a retry slot from the circuit breaker. When it is, the
// response is discarded; otherwise it goes downstream as it is.
func (x *exchange) retryResponse(rs *retryState, resp *http.Response) bool {
	switch {
	case rs.left == 0:
		x.retryLimit()
		return false
	case x.up.body != nil && !x.up.body.replayable():
		x.notKept()
		return false
	case !x.retryAdmitted():
		return false
	}
	// Drain a little so a keep-alive connection can be reused, then discard.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
	return true
}

// retry takes one retry from the budget and waits the back-off. It returns the body for the
// next attempt, and false when the request cannot be retried (budget spent: URX; body not
// kept; route timeout or downstream gone during the back-off).
//
// admitted says the circuit breaker already granted the retry (retryResponse asks first,
// so that a refused retry leaves the response to pass through).
func (x *exchange) retry(ctx context.Context, rs *retryState, n int, admitted bool) (io.ReadCloser, bool) {
	if rs.left == 0 {
		x.retryLimit()
		return nil, false
	}
	if !admitted && !x.retryAdmitted() {
		return nil, false
	}
	rs.take()
	var next io.ReadCloser
	if x.up.body != nil {
		v := x.up.body.view()
		if v == nil {
			x.notKept()
			return nil, false
		}
		next = v
	}
	x.cl.Stats().UpstreamRqRetry.Add(1)
	if d := rs.wait(n); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false
		}
	}
	return next, true
}

// notRetried is why the request's last failure was not retried: the tail of its
// x-lucid-error. A reason of a higher rank wins (the budget spent, the body not kept, a
// retry circuit breaker, a reused connection), and the latest of one rank.
type notRetried struct {
	rank uint8
	note string
}

// The ranks of notRetried.
const (
	reusedNotResent uint8 = iota + 1 // reused.go
	retryOverflow                    // resilience.go
	bodyNotKept
	budgetSpent
)

func (nr *notRetried) set(rank uint8, note string) {
	if rank >= nr.rank {
		nr.rank, nr.note = rank, note
	}
}

// retryLimit records that a retry was wanted but the budget was spent (URX).
func (x *exchange) retryLimit() {
	x.info.Flags |= streaminfo.UpstreamRetryLimitExceeded
	x.cl.Stats().UpstreamRqRetryLimitExceeded.Add(1)
	p := x.policy()
	x.notRetried.set(budgetSpent, "; retry limit "+itoa(int(p.NumRetries))+" exhausted (retry_on "+strings.Join(p.RetryOn, ",")+")")
}

// notKept records that a retry was wanted but the request body could not be sent again.
func (x *exchange) notKept() {
	x.notRetried.set(bodyNotKept, "; not retried: request body not kept for replay")
	x.info.Notes = append(x.info.Notes, "not retried: request body not kept for replay (over 64 KiB or partly sent)")
}

// policy is the retry policy: the request headers', else the route's, else the virtual
// host's.
func (x *exchange) policy() *resource.RetryPolicy {
	if x.over.policy != nil {
		return x.over.policy
	}
	if p := x.rt.Action.RetryPolicy; p != nil {
		return p
	}
	return x.vh.RetryPolicy
}

// originalDst is the destination for ORIGINAL_DST clusters.
func (x *exchange) originalDst() string { return originalDestination(x.cl, x.r, x.in.OriginalDst) }

// fillPeer records the destination workload from the endpoint's Istio metadata
// ("name;namespace;canonical-name;canonical-revision;cluster").
func (x *exchange) fillPeer(h *cluster.Host) {
	if x.in.Direction != "inbound" { // inlined: an inbound request's peer is the caller
		x.fillDestination(h)
	}
}

// fillDestination is fillPeer outbound.
func (x *exchange) fillDestination(h *cluster.Host) {
	ep := &h.Endpoint
	p := streaminfo.Peer{App: ep.Labels["app"], Version: ep.Labels["version"]}
	// "workload;namespace;service;revision;cluster", read in place (no Split per request).
	var parts [5]string
	rest, more := ep.Workload, true
	for i := 0; i < len(parts) && more; i++ {
		parts[i], rest, more = strings.Cut(rest, ";")
	}
	p.Workload, p.Namespace, p.CanonicalService, p.CanonicalRevision, p.Cluster = parts[0], parts[1], parts[2], parts[3], parts[4]
	x.info.Destination = p
}
