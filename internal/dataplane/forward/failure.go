package forward

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// failure is why an attempt ended without response headers: the local reply it gives
// (Explanation without the attempt count), Envoy's transport failure reason, and whether
// the retry policy retries it.
type failure struct {
	Reply
	transport string
	retriable bool
}

func resetFailure(reason, transport string, retried bool) failure {
	f := failure{Reply: Reply{Status: http.StatusServiceUnavailable}, transport: transport}
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
	f.Body = b.String()
	f.Details = d + "}"
	switch reason {
	case pool.ReasonConnectionTermination:
		f.Flag = streaminfo.UpstreamConnectionTermination
	case pool.ReasonRemoteReset, pool.ReasonRemoteRefusedStream:
		f.Flag = streaminfo.UpstreamRemoteReset
	case pool.ReasonProtocolError:
		f.Flag = streaminfo.UpstreamProtocolError
		f.Status = http.StatusBadGateway
	default:
		f.Flag = streaminfo.UpstreamConnectionFailure
	}
	return f
}

func underscores(s string) string { return strings.ReplaceAll(s, " ", "_") }

// classify turns attempt a's RoundTrip error into a failure. ok is false when the
// downstream went away (nothing can be sent).
func (x *exchange) classify(err error, rs *retryState, a *attempt) (f failure, ok bool) {
	host := a.host
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
			Reply: Reply{Flag: streaminfo.UpstreamRequestTimeout, Status: http.StatusGatewayTimeout,
				Body: "upstream request timeout", Details: "upstream_per_try_timeout",
				Explanation: who + " sent no response within the per-try timeout " + x.policy().PerTryTimeout.String()},
			retriable: rs.wouldRetryPerTryTimeout(),
		}, true
	case errors.As(err, &ce):
		f = resetFailure(ce.Reason, ce.Transport, a.n > 1)
		f.Explanation = "connect to " + ce.Addr + " for cluster " + x.cl.Config().Name + " failed: " + connectDetail(ce, x.cl.Config().ConnectTimeout)
		f.retriable = rs.wouldRetryConnect()
		return f, true
	case errors.As(err, &re):
		f = resetFailure(re.Reason, "", a.n > 1)
		switch re.Reason {
		case pool.ReasonProtocolError:
			f.Explanation = who + " sent an invalid response: " + re.Err.Error()
		case pool.ReasonRemoteRefusedStream:
			f.Explanation = who + " refused the stream (HTTP/2 REFUSED_STREAM)"
		case pool.ReasonRemoteReset:
			f.Explanation = who + " reset the stream before response headers: " + re.Err.Error()
		default:
			f.Explanation = who + " closed the connection before response headers"
		}
		f.Explanation += mtlsHint(x.cl.Config(), &host.Endpoint) // peer.go: plaintext to a STRICT server
		switch {
		case re.Reused && re.BeforeHeaders:
			f.Explanation += " (reused connection; request not sent)"
		case re.Reused:
			f.Explanation += " (reused connection)"
		}
		f.retriable = rs.wouldRetryReset(re)
		return f, true
	default:
		f = resetFailure(pool.ReasonConnectionTermination, "", a.n > 1)
		f.Explanation = who + ": " + err.Error()
		return f, true
	}
}

func connectDetail(ce *pool.ConnectError, timeout time.Duration) string {
	if ce.Explain != "" { // a TLS handshake (pool/tls.go)
		return ce.Explain
	}
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
	return failure{Reply: Reply{
		Flag: streaminfo.UpstreamRequestTimeout, Status: http.StatusGatewayTimeout,
		Body: "upstream request timeout", Details: "upstream_response_timeout",
		Explanation: "cluster " + x.cl.Config().Name + " did not answer within the route timeout " +
			x.routeTimeoutValue().String() + " (route \"" + x.rt.Name + "\")",
	}}
}

// fail answers the request with the local reply of attempt n's failure f (the attempt
// count and why it was not retried added to the explanation), counted as an upstream 5xx.
func (x *exchange) fail(f failure, n int) {
	x.info.UpstreamTransportFailureReason = f.transport
	x.chargeLocal(f.Status)
	f.Explanation += attempts(n) + x.notRetried.note
	x.reply(&f.Reply)
}

func attempts(n int) string {
	if n == 1 {
		return " (1 attempt)"
	}
	return " (" + itoa(n) + " attempts)"
}
