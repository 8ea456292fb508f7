package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/dataplane/reqctx"
)

// Envoy reset reasons (Http::Utility::resetReasonToString), as the pool reports them.
const (
	ReasonRemoteConnectionFailure = "remote connection failure"
	ReasonConnectionTimeout       = "connection timeout"
	ReasonLocalConnectionFailure  = "local connection failure"
	ReasonConnectionTermination   = "connection termination"
	ReasonRemoteReset             = "remote reset"
	ReasonRemoteRefusedStream     = "remote refused stream reset"
	ReasonProtocolError           = "protocol error"
)

// ConnectError says no connection to the endpoint could be made (Envoy's UF).
type ConnectError struct {
	Addr string
	// Reason is "remote connection failure", "connection timeout" or "local connection failure".
	Reason string
	// Transport is Envoy's transport failure reason, e.g. "delayed connect error: Connection refused";
	// "" when there is none (timeouts).
	Transport string
	// Explain says in words what failed when Transport does not (a TLS handshake, tls.go).
	Explain string
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connect to %s: %s: %v", e.Addr, e.Reason, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// ResetError says the connection or stream failed after it was established and before
// response headers arrived.
type ResetError struct {
	// Reason is "connection termination" (UC), "remote reset" or "remote refused stream
	// reset" (UR; the latter is HTTP/2 REFUSED_STREAM) or "protocol error" (UPE).
	Reason string
	// Reused: the request went on a connection that had carried earlier requests.
	Reused bool
	// BeforeHeaders: no byte of the request was written upstream (Envoy's
	// reset-before-request condition; the request never reached the application).
	BeforeHeaders bool
	// ResponseStarted: some bytes of a response arrived before the failure (HTTP/1.1 only;
	// always false for HTTP/2, where a reset stream delivered no headers).
	ResponseStarted bool
	Err             error
}

func (e *ResetError) Error() string {
	return fmt.Sprintf("upstream %s: %v", e.Reason, e.Err)
}

func (e *ResetError) Unwrap() error { return e.Err }

// connectError classifies a dial failure.
func connectError(addr string, err error) *ConnectError {
	ce := &ConnectError{Addr: addr, Err: err}
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		ce.Reason = ReasonConnectionTimeout
	case errors.As(err, &errno) && remoteErrno(errno):
		ce.Reason = ReasonRemoteConnectionFailure
		ce.Transport = "delayed connect error: " + capitalize(errno.Error())
	case errors.As(err, &errno):
		ce.Reason = ReasonLocalConnectionFailure
		ce.Transport = capitalize(errno.Error())
	default:
		ce.Reason = ReasonLocalConnectionFailure
		ce.Transport = err.Error()
	}
	return ce
}

// remoteErrno reports errors that come from the peer or the network, which Envoy sees
// as a delayed (asynchronous) connect error.
func remoteErrno(e syscall.Errno) bool {
	switch e {
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH,
		syscall.ETIMEDOUT, syscall.ECONNABORTED:
		return true
	}
	return false
}

// capitalize renders a Go errno text ("connection refused") as strerror(3) does.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// classify turns a transport error into a *ConnectError, a *ResetError, or the context's
// error when the request was cancelled or timed out.
func classify(ctx context.Context, err error, at *attempt) error {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	if ctx.Err() != nil {
		//nolint:errorlint // identity on purpose: is the cause a custom one, or just ctx.Err() itself?
		if cause := reqctx.Cause(ctx); cause != nil && cause != ctx.Err() {
			return fmt.Errorf("upstream request: %w", cause)
		}
		return fmt.Errorf("upstream request: %w", ctx.Err())
	}
	re := &ResetError{
		Reason:        resetReason(err),
		Reused:        at.reused.Load(),
		BeforeHeaders: !at.wrote.Load(),
		Err:           err,
	}
	return re
}

// resetReason maps what net/http reports to Envoy's reset reason. net/http's HTTP/2 errors
// are unexported types, so their text is matched.
func resetReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "REFUSED_STREAM"):
		return ReasonRemoteRefusedStream
	case strings.Contains(msg, "stream error"):
		return ReasonRemoteReset
	case strings.Contains(msg, "malformed"),
		strings.Contains(msg, "invalid"),
		strings.Contains(msg, "PROTOCOL_ERROR"),
		strings.Contains(msg, "too many"),
		strings.Contains(msg, "unsupported"):
		return ReasonProtocolError
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ReasonConnectionTermination
	}
	return ReasonConnectionTermination
}
