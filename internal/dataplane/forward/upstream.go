package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/route"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// prepareRequest builds the upstream request headers, path and host shared by all attempts.
func (x *exchange) prepareRequest(id string) {
	r := x.r
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopHeaders(h, true)
	h.Set("X-Request-Id", id)
	if x.in.HTTP != nil && x.in.HTTP.UseRemoteAddress && x.in.RemoteAddr.IsValid() {
		ip := x.in.RemoteAddr.Addr().Unmap().String()
		if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	}
	// At the edge (use_remote_address) the connection decides, as Envoy does: a client
	// cannot claim https over plaintext. Inside the mesh the first hop's value is kept.
	edge := x.in.HTTP != nil && x.in.HTTP.UseRemoteAddress
	if edge || h.Get("X-Forwarded-Proto") == "" {
		h.Set("X-Forwarded-Proto", requestScheme(r))
	}
	h.Del("X-Forwarded-Client-Cert")

	orig := r.URL.RequestURI()
	rewritten := route.RewritePath(&x.rt.Match, x.rt.Action, orig)
	x.path = r.URL
	if rewritten != orig {
		h.Set("X-Envoy-Original-Path", orig)
		if u, err := url.ParseRequestURI(rewritten); err == nil {
			x.path = u
		}
	}

	x.host = r.Host
	switch {
	case x.wc != nil && x.wc.HostRewriteLiteral != "":
		x.host = x.wc.HostRewriteLiteral
	case x.rt.Action.HostRewriteLiteral != "":
		x.host = x.rt.Action.HostRewriteLiteral
	}

	// Header operations, most specific first: with overwrite, the less specific level wins
	// (Envoy's default, most_specific_header_mutations_wins false).
	if x.wc != nil {
		route.ApplyHeaders(h, x.wc.RequestHeadersToAdd, x.wc.RequestHeadersToRemove)
	}
	route.ApplyHeaders(h, x.rt.RequestHeadersToAdd, x.rt.RequestHeadersToRemove)
	route.ApplyHeaders(h, x.vh.RequestHeadersToAdd, x.vh.RequestHeadersToRemove)
	x.out = h

	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		x.body = newReplayBody(r.Body)
	}
}

// upstreamRequest is the request for one attempt.
func (x *exchange) upstreamRequest(ctx context.Context, attempt int, body io.ReadCloser, host *cluster.Host) *http.Request {
	h := x.out
	if attempt > 1 {
		h = h.Clone()
	}
	if x.vh.IncludeAttemptCount {
		h.Set("X-Envoy-Attempt-Count", itoa(attempt))
	}
	hostHeader := x.host
	if x.rt.Action.AutoHostRewrite && host.Endpoint.Hostname != "" {
		hostHeader = host.Endpoint.Hostname
	}
	u := &url.URL{Path: x.path.Path, RawPath: x.path.RawPath, RawQuery: x.path.RawQuery, Opaque: x.path.Opaque}
	req := http.Request{ // a value: WithContext below makes the one copy that escapes
		Method:     x.r.Method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: x.r.ProtoMajor,
		ProtoMinor: x.r.ProtoMinor,
		Header:     h,
		Host:       hostHeader,
	}
	if body != nil {
		req.Body = body
		req.ContentLength = x.r.ContentLength
		if len(x.r.Trailer) > 0 {
			req.Trailer = x.r.Trailer
		}
	} else {
		req.Body = http.NoBody
	}
	return req.WithContext(ctx)
}

// failure is why an attempt ended without response headers.
type failure struct {
	flag      streaminfo.Flag
	code      int
	body      string
	details   string
	transport string
	explain   string // without the attempt count
	retriable bool
}

func resetFailure(reason, transport string, retried bool) failure {
	f := failure{code: http.StatusServiceUnavailable, transport: transport}
	var b strings.Builder
	b.WriteString("upstream connect error or disconnect/reset before headers. ")
	if retried {
		b.WriteString("retried and the latest ")
	}
	b.WriteString("reset reason: ")
	b.WriteString(reason)
	d := "upstream_reset_before_response_started{" + underscores(reason)
	if transport != "" {
		b.WriteString(", transport failure reason: ")
		b.WriteString(transport)
		d += "|" + underscores(transport)
	}
	f.body = b.String()
	f.details = d + "}"
	switch reason {
	case pool.ReasonConnectionTermination:
		f.flag = streaminfo.UpstreamConnectionTermination
	case pool.ReasonRemoteReset, pool.ReasonRemoteRefusedStream:
		f.flag = streaminfo.UpstreamRemoteReset
	case pool.ReasonProtocolError:
		f.flag = streaminfo.UpstreamProtocolError
		f.code = http.StatusBadGateway
	default:
		f.flag = streaminfo.UpstreamConnectionFailure
	}
	return f
}

func underscores(s string) string { return strings.ReplaceAll(s, " ", "_") }

// classify turns a RoundTrip error into a failure. ok is false when the downstream went
// away (nothing can be sent).
func (x *exchange) classify(err error, rs *retryState, host *cluster.Host, attempt int) (f failure, ok bool) {
	stats := x.cl.Stats()
	who := "upstream " + host.Addr + " (cluster " + x.cl.Config().Name + ")"
	var ce *pool.ConnectError
	var re *pool.ResetError
	var oe *pool.OverflowError
	switch {
	case x.r.Context().Err() != nil:
		return f, false
	case errors.As(err, &oe):
		return x.overflow(oe.Limit, oe.Value), true
	case errors.Is(err, errRouteTimeout):
		stats.UpstreamRqTimeout.Add(1)
		host.Stats.RqTimeout.Add(1)
		return x.routeTimeout(), true
	case errors.Is(err, errPerTryTimeout):
		stats.UpstreamRqPerTryTimeout.Add(1)
		host.Stats.RqTimeout.Add(1)
		return failure{
			flag: streaminfo.UpstreamRequestTimeout, code: http.StatusGatewayTimeout,
			body: "upstream request timeout", details: "upstream_per_try_timeout",
			explain: who + " sent no response within the per-try timeout " +
				x.policy().PerTryTimeout.String(),
			retriable: rs.wouldRetryPerTryTimeout(),
		}, true
	case errors.As(err, &ce):
		f = resetFailure(ce.Reason, ce.Transport, attempt > 1)
		f.explain = "connect to " + ce.Addr + " for cluster " + x.cl.Config().Name + " failed: " + connectDetail(ce, x.cl.Config().ConnectTimeout)
		f.retriable = rs.wouldRetryConnect()
		return f, true
	case errors.As(err, &re):
		f = resetFailure(re.Reason, "", attempt > 1)
		switch re.Reason {
		case pool.ReasonProtocolError:
			f.explain = who + " sent an invalid response: " + re.Err.Error()
		case pool.ReasonRemoteRefusedStream:
			f.explain = who + " refused the stream (HTTP/2 REFUSED_STREAM)"
		case pool.ReasonRemoteReset:
			f.explain = who + " reset the stream before response headers: " + re.Err.Error()
		default:
			f.explain = who + " closed the connection before response headers"
		}
		switch {
		case re.Reused && re.BeforeHeaders:
			f.explain += " (reused connection; request not sent)"
		case re.Reused:
			f.explain += " (reused connection)"
		}
		f.retriable = rs.wouldRetryReset(re)
		return f, true
	default:
		f = resetFailure(pool.ReasonConnectionTermination, "", attempt > 1)
		f.explain = who + ": " + err.Error()
		return f, true
	}
}

func connectDetail(ce *pool.ConnectError, timeout time.Duration) string {
	switch ce.Reason {
	case pool.ReasonConnectionTimeout:
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		return "connection timed out after " + timeout.String()
	case pool.ReasonRemoteConnectionFailure:
		t := strings.TrimPrefix(ce.Transport, "delayed connect error: ")
		if t != "" {
			return strings.ToLower(t[:1]) + t[1:]
		}
	}
	if ce.Transport != "" {
		return ce.Transport
	}
	return ce.Reason
}

func (x *exchange) routeTimeout() failure {
	return failure{
		flag: streaminfo.UpstreamRequestTimeout, code: http.StatusGatewayTimeout,
		body: "upstream request timeout", details: "upstream_response_timeout",
		explain: "cluster " + x.cl.Config().Name + " did not answer within the route timeout " +
			x.routeTimeoutValue().String() + " (route \"" + x.rt.Name + "\")",
	}
}

// policy is the retry policy: the route's, else the virtual host's.
func (x *exchange) policy() *resource.RetryPolicy {
	if x.over.policy != nil {
		return x.over.policy
	}
	if p := x.rt.Action.RetryPolicy; p != nil {
		return p
	}
	return x.vh.RetryPolicy
}

// connCounters feeds a host's and its cluster's connection stats.
type connCounters struct {
	h *cluster.HostStats
	c *cluster.Stats
}

func (k connCounters) ConnOpened() {
	k.h.CxTotal.Add(1)
	k.h.CxActive.Add(1)
	k.c.UpstreamCxTotal.Add(1)
	k.c.UpstreamCxActive.Add(1)
}

func (k connCounters) ConnClosed() {
	k.h.CxActive.Add(-1)
	k.c.UpstreamCxActive.Add(-1)
}

func (k connCounters) PendingStarted() {
	k.c.UpstreamRqPendingTotal.Add(1)
	k.c.UpstreamRqPendingActive.Add(1)
}

func (k connCounters) PendingEnded() { k.c.UpstreamRqPendingActive.Add(-1) }

func (k connCounters) ConnectFailed() {
	k.h.CxConnectFail.Add(1)
	k.c.UpstreamCxConnectFail.Add(1)
}

// forward runs the retry loop and sends the response (or a local reply) downstream.
func (x *exchange) forward(pl *pool.Pool) {
	x.applyRetryHeaders()
	ctx, cancel := x.routeContext()
	defer cancel()
	defer x.releaseRetries()
	pol := x.policy()
	rs := newRetryState(pol)
	stats := x.cl.Stats()
	var tried []*cluster.Host
	var body io.ReadCloser
	if x.body != nil {
		body = x.body.view()
	}
	for attempt := 1; ; attempt++ {
		var exclude []*cluster.Host
		if pol != nil && pol.AvoidPreviousHosts {
			exclude = tried
		}
		pc := cluster.PickContext{OriginalDst: x.originalDst(), Exclude: exclude}
		if pol != nil && pol.RemoteLocalities && attempt > 1 {
			pc.RemoteLocalities, pc.Tried = true, tried
		}
		pc.Hash, pc.HasHash = x.requestHash()
		host, err := x.cl.Pick(pc)
		if err != nil {
			x.reply(noHealthy(err))
			return
		}
		x.info.UpstreamHost = host.Addr
		x.info.Attempts = attempt
		x.fillPeer(host)

		actx, acancel := perTryContext(ctx, pol)
		actx = x.pinned(actx, host)           // stream.go: ended when host leaves the cluster
		actx = pool.WithConnObserver(actx, x) // UpstreamConn: the upstream local address
		req := x.upstreamRequest(actx, attempt, body, host)

		if f, ok := x.admit(); !ok {
			acancel()
			x.localReply(f.code, f.flag, f.details, f.body, f.explain)
			return
		}
		host.RequestStart()
		stats.UpstreamRqTotal.Add(1)
		start := time.Now()
		var resp *http.Response
		resp, err = x.send(pl, req, host, attempt)
		if err != nil {
			host.RequestEnd()
			stats.UpstreamRqActive.Add(-1)
			acancel()
			f, ok := x.classify(err, rs, host, attempt)
			if !ok {
				x.downstreamGone()
				return
			}
			x.reportFailure(host, err)
			if f.retriable {
				next, retry := x.retry(ctx, rs, attempt, false)
				if retry {
					tried = append(tried, host)
					body = next
					continue
				}
				if ctx.Err() != nil && x.r.Context().Err() == nil {
					f = x.routeTimeout()
				}
			}
			x.info.UpstreamTransportFailureReason = f.transport
			x.chargeLocal(f.code)
			x.localReply(f.code, f.flag, f.details, f.body, f.explain+attempts(attempt)+x.retryNote())
			return
		}

		x.charge(resp.StatusCode, host)
		x.cl.ReportStatus(host, resp.StatusCode)
		if rs.wouldRetryResponse(resp.StatusCode, resp.Header) {
			next, retry, discarded := x.retryResponse(ctx, rs, attempt, resp)
			if retry || discarded {
				host.RequestEnd()
				stats.UpstreamRqActive.Add(-1)
				acancel()
			}
			if retry {
				tried = append(tried, host)
				body = next
				continue
			}
			if discarded { // the route timeout fired or the client left during the back-off
				if x.r.Context().Err() != nil {
					x.downstreamGone()
					return
				}
				f := x.routeTimeout()
				x.localReply(f.code, f.flag, f.details, f.body, f.explain+attempts(attempt))
				return
			}
		}
		if attempt > 1 {
			stats.UpstreamRqRetrySuccess.Add(1)
		}
		if x.setCookie != "" {
			resp.Header.Add("Set-Cookie", x.setCookie)
		}
		x.respond(ctx, actx, resp, start)
		host.RequestEnd()
		stats.UpstreamRqActive.Add(-1)
		acancel()
		return
	}
}

// retryResponse decides whether a retriable response is retried. When it is, or when the
// back-off was cut short, the response has been discarded.
func (x *exchange) retryResponse(ctx context.Context, rs *retryState, attempt int, resp *http.Response) (next io.ReadCloser, retry, discarded bool) {
	switch {
	case rs.left == 0:
		x.retryLimit()
		return nil, false, false
	case x.body != nil && !x.bodyReplayable():
		x.notKept()
		return nil, false, false
	case !x.retryAdmitted():
		return nil, false, false
	}
	// Drain a little so a keep-alive connection can be reused, then discard.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
	next, retry = x.retry(ctx, rs, attempt, true)
	return next, retry, true
}

func (x *exchange) bodyReplayable() bool {
	x.body.mu.Lock()
	defer x.body.mu.Unlock()
	return (x.body.eof && !x.body.overflow) || (x.body.read == 0 && !x.body.reading)
}

// retry takes one retry from the budget and waits the back-off. It returns the body for the
// next attempt, and false when the request cannot be retried (budget spent: URX; body not
// kept; route timeout or downstream gone during the back-off).
//
// admitted says the circuit breaker already granted the retry (retryResponse asks first,
// so that a refused retry leaves the response to pass through).
func (x *exchange) retry(ctx context.Context, rs *retryState, attempt int, admitted bool) (io.ReadCloser, bool) {
	stats := x.cl.Stats()
	if rs.left == 0 {
		x.retryLimit()
		return nil, false
	}
	if !admitted && !x.retryAdmitted() {
		return nil, false
	}
	rs.take()
	var next io.ReadCloser
	if x.body != nil {
		v := x.body.view()
		if v == nil {
			x.notKept()
			return nil, false
		}
		next = v
	}
	stats.UpstreamRqRetry.Add(1)
	if d := rs.wait(attempt); d > 0 {
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

// retryLimit records that a retry was wanted but the budget was spent (URX).
func (x *exchange) retryLimit() {
	x.info.Flags |= streaminfo.UpstreamRetryLimitExceeded
	x.cl.Stats().UpstreamRqRetryLimitExceeded.Add(1)
	x.retryExhausted = true
}

// notKept records that a retry was wanted but the request body could not be sent again.
func (x *exchange) notKept() {
	x.bodyNotKept = true
	x.info.Notes = append(x.info.Notes, "not retried: request body not kept for replay (over 64 KiB or partly sent)")
}

// perTryContext bounds one attempt by the policy's per-try timeout.
func perTryContext(ctx context.Context, pol *resource.RetryPolicy) (context.Context, context.CancelFunc) {
	if pol != nil && pol.PerTryTimeout > 0 {
		return context.WithTimeoutCause(ctx, pol.PerTryTimeout, errPerTryTimeout)
	}
	return ctx, func() {}
}

func (x *exchange) retryNote() string {
	switch {
	case x.retryExhausted:
		p := x.policy()
		return "; retry limit " + itoa(int(p.NumRetries)) + " exhausted (retry_on " + strings.Join(p.RetryOn, ",") + ")"
	case x.bodyNotKept:
		return "; not retried: request body not kept for replay"
	case x.retryOverflow != "":
		return "; not retried: " + x.retryOverflow
	case x.reusedNotRetried != "":
		return "; " + x.reusedNotRetried
	}
	return ""
}

func attempts(n int) string {
	if n == 1 {
		return " (1 attempt)"
	}
	return " (" + itoa(n) + " attempts)"
}

// UpstreamConn records the upstream connection's local address (pool.ConnObserver). It
// may run on a transport goroutine; the address is formatted when the request ends.
func (x *exchange) UpstreamConn(c net.Conn) {
	x.upMu.Lock()
	x.upAddr = c.LocalAddr()
	x.upMu.Unlock()
}

// upstreamLocalAddress is %UPSTREAM_LOCAL_ADDRESS%: the last upstream connection's.
func (x *exchange) upstreamLocalAddress() string {
	if a := x.upstreamLocal.Load(); a != nil { // upgrade.go: a hijacked connection
		return *a
	}
	x.upMu.Lock()
	defer x.upMu.Unlock()
	if x.upAddr == nil {
		return ""
	}
	return x.upAddr.String()
}

// originalDst is the destination for ORIGINAL_DST clusters.
func (x *exchange) originalDst() string { return originalDestination(x.cl, x.r, x.in.OriginalDst) }

// fillPeer records the destination workload from the endpoint's Istio metadata
// ("name;namespace;canonical-name;canonical-revision;cluster").
func (x *exchange) fillPeer(h *cluster.Host) {
	if x.in.Direction == "inbound" {
		return
	}
	ep := &h.Endpoint
	p := streaminfo.Peer{App: ep.Labels["app"], Version: ep.Labels["version"]}
	parts := strings.Split(ep.Workload, ";")
	get := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	p.Workload, p.Namespace, p.CanonicalService, p.CanonicalRevision, p.Cluster = get(0), get(1), get(2), get(3), get(4)
	x.info.Destination = p
}

// charge counts one upstream response code.
func (x *exchange) charge(code int, host *cluster.Host) {
	s := x.cl.Stats()
	s.UpstreamRqCompleted.Add(1)
	switch code / 100 {
	case 2:
		s.UpstreamRq2xx.Add(1)
	case 3:
		s.UpstreamRq3xx.Add(1)
	case 4:
		s.UpstreamRq4xx.Add(1)
	case 5:
		s.UpstreamRq5xx.Add(1)
	}
	if code >= 500 {
		host.Stats.RqError.Add(1)
	} else {
		host.Stats.RqSuccess.Add(1)
	}
}

// chargeLocal counts a local reply for an upstream failure as Envoy does (upstream_rq_5xx).
func (x *exchange) chargeLocal(code int) {
	s := x.cl.Stats()
	s.UpstreamRqCompleted.Add(1)
	if code >= 500 {
		s.UpstreamRq5xx.Add(1)
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
