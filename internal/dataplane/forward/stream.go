package forward

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Long-lived responses (watches, gRPC streams, server-sent events) and what ends them.
//
// While a response streams, it is tracked on its upstream host (cluster.Host.Track): when
// the host leaves the cluster (EDS removal, unhealthy, ejection) and the drain grace period
// passes, the attempt's context is cancelled with a *hostGoneError and the downstream
// stream ends. When the upstream connection dies under the stream (HTTP/2 PING timeout,
// TCP keepalive or user timeout, RST, GOAWAY), the body read fails. Either way the
// downstream hears about it at once: gRPC requests get grpc-status UNAVAILABLE in trailers,
// others an HTTP/2 RST_STREAM (or, on HTTP/1.1, the connection closed).

// hostGoneError is the cause given to an attempt ended because its host left the cluster.
type hostGoneError struct{ reason string }

func (e *hostGoneError) Error() string { return e.reason }

// track registers the streaming response on its host until untrack. Ending it
// (EndStream) cancels the attempt and closes the body: the transport may not watch the
// context while it is blocked copying the request body upstream (bidirectional streams).
func (a *attempt) track(resp *http.Response) {
	if a.rc == nil {
		return
	}
	a.streamBody = resp.Body
	a.host.Track(&a.stream, cluster.HTTPStream, a)
}

// untrack ends what track began; once it returns, EndStream is not running.
func (a *attempt) untrack() {
	if a.streamBody == nil {
		return
	}
	a.host.Untrack(&a.stream)
	a.streamBody = nil
}

// EndStream ends the attempt's streaming response because its host left the cluster
// (cluster.StreamEnder).
func (a *attempt) EndStream(reason string) {
	a.rc.Cancel(&hostGoneError{reason: reason})
	_ = a.streamBody.Close()
}

// midStream classifies why an upstream body ended early: Envoy's flag, the reset reason
// for the details, and a sentence for x-lucid-error / the access log.
func midStream(actx context.Context, err error) (flag streaminfo.Flag, reason, why string) {
	var hg *hostGoneError
	msg := err.Error()
	switch {
	case errors.As(reqctx.Cause(actx), &hg):
		return streaminfo.LocalReset, "local reset", hg.reason
	case strings.Contains(msg, "client connection lost"):
		return streaminfo.UpstreamConnectionTermination, "connection termination",
			"the upstream stopped answering HTTP/2 PINGs (dead peer or blackholed path); connection closed"
	case errors.Is(err, syscall.ETIMEDOUT):
		return streaminfo.UpstreamConnectionTermination, "connection termination",
			"the upstream stopped acknowledging TCP (keepalive or user timeout expired: dead peer or blackholed path)"
	case strings.Contains(msg, "stream error"), strings.Contains(msg, "RST_STREAM"):
		return streaminfo.UpstreamRemoteReset, "remote reset", "the upstream reset the stream: " + msg
	case strings.Contains(msg, "GOAWAY"):
		return streaminfo.UpstreamConnectionTermination, "connection termination", "the upstream closed the connection (GOAWAY): " + msg
	case errors.Is(err, syscall.ECONNRESET):
		return streaminfo.UpstreamConnectionTermination, "connection termination", "the upstream reset the connection"
	}
	return streaminfo.UpstreamConnectionTermination, "connection termination", "the upstream connection ended: " + msg
}
