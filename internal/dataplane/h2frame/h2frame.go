// Package h2frame reads the HTTP/2 frame a proxy reads most, a request's or an answer's
// HEADERS frame, in place in the connection's read buffer, where x/net's Framer would
// allocate a frame for it. h2server (requests) and h2client (answers) read their frames
// through a Reader, which tries that before each ReadFrame; every other frame, and a
// HEADERS frame that needs any of the Framer's rarer handling, is left to the Framer, so
// its checks and errors apply as before.
package h2frame

import (
	"bufio"

	"golang.org/x/net/http2"
)

// HeaderLen is the length of an HTTP/2 frame header (RFC 9113, section 4.1).
const HeaderLen = 9

// Headers is a HEADERS frame read in place: a whole header block on a stream, without
// padding or priority.
type Headers struct {
	StreamID  uint32
	EndStream bool
	// Fragment is the header block, in br's buffer: valid until Done or br's next read.
	Fragment []byte
	size     int // the frame's bytes, consumed by Done
}

// PeekHeaders returns the next frame in br when it is a HEADERS frame that needs none of
// the Framer's rarer handling: the whole block in it (END_HEADERS), no padding, no
// priority, a stream (not 0), at most maxFrame bytes of payload, and small enough for br's
// buffer. ok false: nothing was consumed, and the Framer reads the frame as before.
//
// Alongside a Framer reading the same br, use it through Reader, which knows when the
// Framer must read the next frame. Peek waits for the frame's bytes as ReadFrame would;
// if the connection ends first, ok is false and ReadFrame meets the end.
func PeekHeaders(br *bufio.Reader, maxFrame uint32) (h Headers, ok bool) {
	hdr, err := br.Peek(HeaderLen)
	if err != nil || http2.FrameType(hdr[3]) != http2.FrameHeaders {
		return Headers{}, false
	}
	flags := http2.Flags(hdr[4])
	if flags&^(http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders) != 0 || !flags.Has(http2.FlagHeadersEndHeaders) {
		return Headers{}, false
	}
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	id := uint32(hdr[5]&0x7f)<<24 | uint32(hdr[6])<<16 | uint32(hdr[7])<<8 | uint32(hdr[8])
	if id == 0 || n > int(maxFrame) || HeaderLen+n > br.Size() {
		return Headers{}, false
	}
	b, err := br.Peek(HeaderLen + n)
	if err != nil {
		return Headers{}, false
	}
	return Headers{StreamID: id, EndStream: flags.Has(http2.FlagHeadersEndStream), Fragment: b[HeaderLen:], size: HeaderLen + n}, true
}

// Done consumes the frame from br, once its block is decoded.
func (h Headers) Done(br *bufio.Reader) {
	_, _ = br.Discard(h.size)
}

// Reader reads a connection's frames from br: the usual HEADERS frame in place
// (PeekHeaders), every other frame through fr, which reads from br too.
type Reader struct {
	fr       *http2.Framer
	br       *bufio.Reader
	maxFrame uint32
	// framerNext: the Framer failed on the last frame and reading went on (a stream
	// error). That frame may have opened a header block (a HEADERS frame without
	// END_HEADERS whose padding is too long), which only the Framer knows of: it reads
	// the next frame, and refuses anything but a CONTINUATION.
	framerNext bool
}

// NewReader reads frames from br, through fr where not in place; maxFrame is the largest
// payload fr accepts (its SetMaxReadFrameSize).
func NewReader(fr *http2.Framer, br *bufio.Reader, maxFrame uint32) Reader {
	return Reader{fr: fr, br: br, maxFrame: maxFrame}
}

// Headers returns the next frame read in place when it is a usual HEADERS frame
// (PeekHeaders); ok false: nothing was consumed, and ReadFrame reads the frame. inBlock:
// the caller is inside a header block (a HEADERS or CONTINUATION frame without
// END_HEADERS came last), where the Framer checks that a CONTINUATION comes: never then.
// Call Done(h) once h's block is decoded.
func (r *Reader) Headers(inBlock bool) (h Headers, ok bool) {
	if inBlock || r.framerNext {
		return Headers{}, false
	}
	return PeekHeaders(r.br, r.maxFrame)
}

// Done consumes the frame Headers read.
func (r *Reader) Done(h Headers) { h.Done(r.br) }

// ReadFrame reads the next frame through the Framer.
func (r *Reader) ReadFrame() (http2.Frame, error) {
	f, err := r.fr.ReadFrame()
	r.framerNext = err != nil
	return f, err
}

// Readiness is what reading the next frame would take, for a reader that must not wait
// for the socket while it reads (one inside the poller's wait, sockio.Conn.Hold).
type Readiness int8

const (
	// NeedMore says the next frame has not all arrived.
	NeedMore Readiness = iota
	// Buffered says reading the next frame (Headers or ReadFrame, and the header block
	// it holds) takes only bytes already in br's buffer.
	Buffered
	// Blocking says reading the next frame takes reads of its own, which may wait: it is
	// larger than br's buffer, or it opens a header block that CONTINUATION frames go on
	// with (the caller reads those as part of the block).
	Blocking
)

// Next reports what reading the next frame would take. It peeks only at what br has
// buffered, and never reads.
func (r *Reader) Next() Readiness {
	have := r.br.Buffered()
	if have < HeaderLen {
		return NeedMore
	}
	hdr, _ := r.br.Peek(HeaderLen)
	n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	switch {
	case n > int(r.maxFrame):
		return Buffered // the Framer refuses it from its header alone
	case HeaderLen+n > r.br.Size():
		return Blocking
	case http2.FrameType(hdr[3]) == http2.FrameHeaders && !http2.Flags(hdr[4]).Has(http2.FlagHeadersEndHeaders):
		return Blocking
	case have < HeaderLen+n:
		return NeedMore
	}
	return Buffered
}
