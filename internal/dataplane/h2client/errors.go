package h2client

import (
	"errors"
	"fmt"

	"golang.org/x/net/http2"
)

// ErrClosed is the error of streams cut by Close, and of RoundTrips on a closed connection.
var ErrClosed = errors.New("http2: client conn is closed")

// errIDsExhausted: the connection has used every client stream id.
var errIDsExhausted = errors.New("http2: stream ids exhausted")

// errConnLost closes a connection whose PING went unanswered. Its text is net/http's,
// which the forwarder's mid-stream reasons recognise.
var errConnLost = errors.New("http2: client connection lost")

// UnprocessedError says the server did not process the stream: a GOAWAY named a lower
// last stream id, or the connection stopped taking streams before the request's headers
// went out. Sending the request again, on another connection, is safe.
type UnprocessedError struct {
	StreamID uint32 // 0 when the stream never got an id
	Err      error
}

func (e *UnprocessedError) Error() string {
	if e.StreamID == 0 {
		return "http2: request not sent: " + e.Err.Error()
	}
	return fmt.Sprintf("http2: stream %d not processed by the server: %v", e.StreamID, e.Err)
}

func (e *UnprocessedError) Unwrap() error { return e.Err }

// GoAwayError is the error of streams cut when the server sent GOAWAY and closed the
// connection before they ended.
type GoAwayError struct {
	LastStreamID uint32
	ErrCode      http2.ErrCode
	DebugData    string
}

func (e *GoAwayError) Error() string {
	return fmt.Sprintf("http2: server sent GOAWAY and closed the connection; LastStreamID=%v, ErrCode=%v, debug=%q",
		e.LastStreamID, e.ErrCode, e.DebugData)
}

// notWrittenError marks an error that happened before any byte of the request's headers was
// written to the connection.
type notWrittenError struct{ error }

func (e notWrittenError) Unwrap() error { return e.error }

// HeadersWritten says whether a RoundTrip error came after the request's headers were
// written (the server may have seen the request).
func HeadersWritten(err error) bool {
	var nw notWrittenError
	return !errors.As(err, &nw)
}

// IsUnprocessed says whether err reports a stream the server did not process.
func IsUnprocessed(err error) bool {
	var ue *UnprocessedError
	return errors.As(err, &ue)
}
