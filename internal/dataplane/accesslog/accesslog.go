// Package accesslog writes one line per request in Istio's access-log formats: the
// default TEXT format (Istio's EnvoyTextLogFormat) or the JSON one (its keys).
//
// It sits at the end of the request path: forward fills a streaminfo.Info and, once the
// response is done, hands it to Logger.Log. Log formats the line (no allocation for
// Istio's TEXT and JSON formats) and appends it to the logger's buffer; the lines are
// written a moment later, together, by one Write. The first line of a batch starts a
// flush that first lets every goroutine ready to run go (runtime.Gosched), so at load
// one write(2) carries the lines of many requests, and alone a line is written as soon as
// the flush's goroutine runs. A buffer past 64 KiB is written by the request that
// filled it, which holds back requests rather than memory when the writer is slow.
// Close writes what is left. (Envoy, as Istio starts it, flushes its file access logs
// every second; lines appear here sooner than that, and are never cut or interleaved.)
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
	"runtime"
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

	mu      sync.Mutex // guards pending, spare, kicked and closed
	pending *batch     // lines not yet written; formatted in place
	spare   *batch     // the batch the last flush wrote, the next pending
	kicked  bool       // a flush is on its way for pending
	closed  bool

	writeMu sync.Mutex // serialises flushes, so batches reach w in order
	w       io.Writer
	flushFn func() // flushSoon, bound once: go l.flushFn() makes no closure

	failed atomic.Uint64
}

const (
	// flushAt is the buffer size at which the request that reaches it writes the
	// buffer itself instead of leaving it to the pending flush.
	flushAt = 64 << 10
	// keepCap bounds the buffers kept between flushes.
	keepCap = 1 << 20
)

// batch is lines formatted one after another into buf; ends holds where each one ends, so
// that a failed write counts the lines it lost (a custom format's line need not end in a
// newline, and may hold one).
type batch struct {
	buf  bytes.Buffer
	ends []int
}

// add records that a line ends at the buffer's current end.
func (b *batch) add() { b.ends = append(b.ends, b.buf.Len()) }

// New returns a logger that writes lines in format f to w. w is not closed by Close.
func New(w io.Writer, f Format) *Logger {
	l := &Logger{w: w, format: f, pending: new(batch), spare: new(batch)}
	l.flushFn = l.flushSoon
	return l
}

// Log queues the line for info. It never fails the request: a write error is counted
// (see Failed) and the lines are dropped. Log after Close does nothing.
func (l *Logger) Log(info *streaminfo.Info) {
	b := l.begin()
	if b == nil {
		return
	}
	if l.format == JSON {
		appendJSON(b, info)
	} else {
		appendText(b, info)
	}
	l.end()
}

// begin locks l.mu and returns the buffer a line is to be formatted into; nil (and l.mu
// unlocked) after Close. end must follow.
func (l *Logger) begin() *bytes.Buffer {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	return &l.pending.buf
}

// end records the line begin's caller formatted and unlocks l.mu; it writes pending
// itself when it is full, else makes sure a flush is on its way.
func (l *Logger) end() {
	l.pending.add()
	full := l.pending.buf.Len() >= flushAt
	start := !full && !l.kicked
	if start {
		l.kicked = true
	}
	l.mu.Unlock()
	switch {
	case full:
		l.Flush()
	case start:
		go l.flushFn()
	}
}

// flushSoon writes the pending lines once the goroutines ready to run now have run,
// so the lines they log go in the same write.
func (l *Logger) flushSoon() {
	runtime.Gosched()
	l.Flush()
}

// Flush writes the lines logged so far.
func (l *Logger) Flush() {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.Lock()
	out := l.pending
	if l.spare == nil {
		l.spare = new(batch)
	}
	l.pending, l.spare = l.spare, nil
	l.kicked = false
	l.mu.Unlock()
	if len(out.ends) > 0 {
		if n, err := l.w.Write(out.buf.Bytes()); err != nil {
			lost := 0 // the lines not written whole
			for _, e := range out.ends {
				if e > n {
					lost++
				}
			}
			l.failed.Add(uint64(lost))
		}
	}
	if out.buf.Cap() > keepCap {
		out = nil // left to the GC
	} else {
		out.buf.Reset()
		out.ends = out.ends[:0]
	}
	l.mu.Lock()
	l.spare = out
	l.mu.Unlock()
}

// Failed is the number of lines dropped because the writer failed.
func (l *Logger) Failed() uint64 { return l.failed.Load() }

// Close writes the lines logged so far and stops the logger: later Log calls write
// nothing. It does not close the writer.
func (l *Logger) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.Flush()
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
