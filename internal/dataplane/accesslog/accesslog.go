// Package accesslog writes one line per request in Istio's access-log formats: the
// default TEXT format (Istio's EnvoyTextLogFormat) or the JSON one (its keys).
//
// It sits at the end of the request path: forward fills a streaminfo.Info and, once the
// response is done, hands it to Logger.Log. Log formats into a pooled buffer and writes
// the line with one Write under a mutex, so lines never interleave and nothing is kept.
//
// Lucid's additions. TEXT: when Info.LucidError or Info.Notes is set, one trailing field
// ` "lucid=<error>; <note>; ..."` is appended after Istio's last field (%ROUTE_NAME%),
// before the newline. Parsers of Istio's format match its fields from the start of the
// line, so one extra quoted field at the end leaves them working; inside it `"` and `\`
// are escaped with a backslash and control characters as \n, \t, \xHH, so the line stays
// one line. JSON: the keys "lucid_error" and "lucid_notes" (an array) when set.
package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Format is an access-log encoding.
type Format int

// The encodings Istio's meshConfig.accessLogEncoding offers.
const (
	Text Format = iota
	JSON
)

// ErrUnknownFormat is returned (wrapped) by ParseFormat.
var ErrUnknownFormat = errors.New("unknown access log format")

// ParseFormat parses "TEXT" or "JSON", in any case.
func ParseFormat(s string) (Format, error) {
	switch strings.ToUpper(s) {
	case "TEXT":
		return Text, nil
	case "JSON":
		return JSON, nil
	}
	return 0, fmt.Errorf("%w: %q (want TEXT or JSON)", ErrUnknownFormat, s)
}

// String returns "TEXT" or "JSON".
func (f Format) String() string {
	if f == JSON {
		return "JSON"
	}
	return "TEXT"
}

// Logger writes access-log lines to one writer. It is safe for concurrent use.
type Logger struct {
	format Format

	mu     sync.Mutex // serialises writes to w and guards closed
	w      io.Writer
	closed bool

	failed atomic.Uint64
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// New returns a logger that writes lines in format f to w. w is not closed by Close.
func New(w io.Writer, f Format) *Logger {
	return &Logger{w: w, format: f}
}

// Log writes the line for info. It never fails the request: a write error is counted
// (see Failed) and the line is dropped. Log after Close does nothing.
func (l *Logger) Log(info *streaminfo.Info) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if l.format == JSON {
		appendJSON(buf, info)
	} else {
		appendText(buf, info)
	}
	l.write(buf)
}

// write writes one formatted line and returns buf to the pool.
func (l *Logger) write(buf *bytes.Buffer) {
	l.mu.Lock()
	if !l.closed {
		if _, err := l.w.Write(buf.Bytes()); err != nil {
			l.failed.Add(1)
		}
	}
	l.mu.Unlock()
	if buf.Cap() <= 64<<10 {
		bufPool.Put(buf)
	}
}

// Failed is the number of lines dropped because the writer failed.
func (l *Logger) Failed() uint64 { return l.failed.Load() }

// Close stops the logger: later Log calls write nothing. It does not close the writer.
func (l *Logger) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return nil
}

// FormatText returns the TEXT line for info, newline included.
func FormatText(info *streaminfo.Info) string {
	var b bytes.Buffer
	appendText(&b, info)
	return b.String()
}

// FormatJSON returns the JSON line for info, newline included.
func FormatJSON(info *streaminfo.Info) string {
	var b bytes.Buffer
	appendJSON(&b, info)
	return b.String()
}
