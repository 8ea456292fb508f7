package forward

import (
	"errors"
	"io"
	"sync"
)

// maxReplay is how much of a request body is kept so that a retry can send it again
// (Envoy's per-request buffer limit plays the same role).
const maxReplay = 64 << 10

var errBodyMoved = errors.New("request body moved to a retry attempt")

// replayBody is the downstream request body shared by the attempts of one request. The
// first attempt streams it from the client while keeping a copy of up to maxReplay bytes.
// A later attempt may send the body again only if nothing of it was read yet, or if the
// whole body was read and kept; otherwise the request cannot be retried.
//
// Lock contract: mu guards every field. src.Read is called without mu held, by at most one
// view at a time (reading is set meanwhile).
type replayBody struct {
	mu       sync.Mutex
	src      io.Reader
	buf      []byte
	read     int64 // bytes read from src
	eof      bool  // src returned io.EOF
	overflow bool  // more than maxReplay bytes were read: buf is incomplete
	reading  bool  // a view is inside src.Read
	err      error // src's non-EOF error
	current  *bodyView
}

func newReplayBody(src io.Reader) *replayBody { return &replayBody{src: src} }

// view returns the body for the next attempt, or nil when the body cannot be sent again.
// The previous attempt's view stops reading.
func (b *replayBody) view() *bodyView {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.current != nil {
		if !b.replayableLocked() {
			return nil
		}
		b.current.moved = true
	}
	v := &bodyView{b: b}
	b.current = v
	return v
}

// replayable reports whether a next attempt could send the body again: nothing of it was
// read yet, or all of it was read and kept.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.replayableLocked()
}

func (b *replayBody) replayableLocked() bool {
	return (b.eof && !b.overflow) || (b.read == 0 && !b.reading)
}

// complete reports whether the body was read to the end and kept whole (mirrors can send it).
func (b *replayBody) complete() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf, b.eof && !b.overflow
}

// bytesRead is how many bytes of the body came from the client.
func (b *replayBody) bytesRead() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

// failed is the downstream body's read error other than io.EOF (nil when none).
func (b *replayBody) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// bodyView is one attempt's reader over a replayBody.
type bodyView struct {
	b     *replayBody
	off   int
	moved bool // guarded by b.mu
	// cut ends the attempt reading this view when the downstream body fails (downstream.go);
	// set before the attempt starts, read by the goroutine that sends the body.
	cut func(cause error)
}

func (v *bodyView) Read(p []byte) (int, error) {
	b := v.b
	b.mu.Lock()
	if v.moved {
		b.mu.Unlock()
		return 0, errBodyMoved
	}
	if v.off < len(b.buf) {
		n := copy(p, b.buf[v.off:])
		v.off += n
		b.mu.Unlock()
		return n, nil
	}
	if b.eof {
		b.mu.Unlock()
		return 0, io.EOF
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.src.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.read += int64(n)
	if !b.overflow {
		if len(b.buf)+n > maxReplay {
			b.overflow = true
			b.buf = nil
		} else {
			b.buf = append(b.buf, p[:n]...)
			v.off = len(b.buf)
		}
	}
	switch {
	case errors.Is(err, io.EOF):
		b.eof = true
	case err != nil:
		b.err = err
		if v.cut != nil {
			v.cut(errDownstreamBody)
		}
	}
	return n, err
}

// Close does not close the downstream body: the server owns it, and a retry may need it.
func (v *bodyView) Close() error { return nil }
