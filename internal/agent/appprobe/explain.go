package appprobe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"
)

// Reasons: the metric's reason label and the class of a failure. The status the kubelet
// gets follows from the class: the app's own status unchanged, 502 when the app could not
// be reached or broke the connection, 504 when it did not answer in time.
const (
	ReasonOK            = "ok"            // 2xx, SERVING, TCP connect
	ReasonRedirect      = "redirect"      // a final 3xx, answered 200 as Istio does
	ReasonStatus        = "status"        // the app answered a failing HTTP status
	ReasonRefused       = "refused"       // connection refused: nothing listens on the port
	ReasonReset         = "reset"         // connection reset by the app
	ReasonClosed        = "closed"        // the app closed the connection before the response was complete
	ReasonTimeout       = "timeout"       // no (complete) answer within timeoutSeconds
	ReasonTLS           = "tls"           // TLS handshake failed
	ReasonRedirects     = "redirects"     // more than 10 redirects
	ReasonUnreachable   = "unreachable"   // no route to the target
	ReasonNotServing    = "not_serving"   // gRPC health answered other than SERVING
	ReasonUnimplemented = "unimplemented" // the gRPC server has no grpc.health.v1.Health
	ReasonGRPC          = "grpc"          // another gRPC error
	ReasonError         = "error"         // anything else
)

// errTooManyRedirects is what the redirect checker returns after 10 redirects, as the
// kubelet's does.
var errTooManyRedirects = errors.New("stopped after 10 redirects")

// verdict is the outcome of one probe.
type verdict struct {
	status int    // what the kubelet gets
	reason string // Reason*
	cause  string // "" on success; else why, without the "<probe> for container <c>: <target>: " prefix
	body   []byte // the app's body (HTTP), passed through
}

func (v verdict) ok() bool { return v.cause == "" }

// explainErr classifies a transport error of a probe. phase says where it happened:
// "" (connecting, sending, awaiting headers) or "body" (reading the response body).
func explainErr(err error, tr *trace, timeout time.Duration, phase string) verdict {
	n := tr.read.Load()
	after := fmt.Sprintf("after %d bytes", n)
	if phase == "body" {
		after += " (in the response body)"
	}
	var opErr *net.OpError
	op := "read"
	if errors.As(err, &opErr) && opErr.Op != "" {
		op = opErr.Op
	}
	switch {
	case errors.Is(err, errTooManyRedirects):
		return verdict{status: http.StatusBadGateway, reason: ReasonRedirects, cause: errTooManyRedirects.Error()}
	case isTimeout(err):
		what := "no response"
		switch {
		case !tr.dialed.Load():
			what = "could not connect"
		case phase == "body":
			what = "response body not complete"
		}
		return verdict{status: http.StatusGatewayTimeout, reason: ReasonTimeout,
			cause: fmt.Sprintf("%s within the probe's timeout (%s) %s", what, timeout, after)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return verdict{status: http.StatusBadGateway, reason: ReasonRefused, cause: "connect: connection refused (nothing listens on the port)"}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return verdict{status: http.StatusBadGateway, reason: ReasonReset, cause: fmt.Sprintf("%s: connection reset by peer %s", op, after)}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return verdict{status: http.StatusBadGateway, reason: ReasonUnreachable, cause: "connect: " + rootText(err)}
	case isTLS(err):
		return verdict{status: http.StatusBadGateway, reason: ReasonTLS, cause: "TLS handshake: " + rootText(err)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return verdict{status: http.StatusBadGateway, reason: ReasonClosed, cause: "connection closed by the app " + after}
	}
	return verdict{status: http.StatusBadGateway, reason: ReasonError, cause: rootText(err) + " " + after}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, syscall.ETIMEDOUT) { // Canceled: the kubelet gave up at timeoutSeconds
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isTLS(err error) bool {
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &rh) || errors.As(err, &alert) || errors.As(err, &cv) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "server gave HTTP response to HTTPS client")
}

// rootText is the innermost error's text: the cause without Go's "Get \"url\": " wrapping.
func rootText(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		if _, ok := next.(syscall.Errno); ok { //nolint:errorlint // one level only: is next itself the errno?
			return err.Error()
		}
		err = next
	}
}

// excerptLen bounds the part of a failing answer's body a cause quotes (runes).
const excerptLen = 120

// bodyExcerpt quotes the first line of a failing answer's body for the cause (`: "…"`),
// at most excerptLen runes with control characters dropped, so that the event and the
// log say what the app said (an out-of-memory error behind a 500) and not only the status.
// An empty body quotes nothing.
func bodyExcerpt(body []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	line = strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return -1
		}
		return r
	}, line))
	if line == "" {
		return ""
	}
	if utf8.RuneCountInString(line) > excerptLen {
		line = string([]rune(line)[:excerptLen]) + "…"
	}
	return ": " + strconv.Quote(line)
}
