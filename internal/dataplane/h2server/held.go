package h2server

import (
	"bufio"
	"errors"
	"net"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2frame"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

// Frames read inside the poller's wait for the next ones. A reader that reads until its
// buffer is empty and then reads again makes, after each burst of frames, a read(2) that
// finds nothing: the runtime's poller forgets, at the start of each read, the readiness
// it noted before, so only a read can tell whether more came. On a plaintext socket the
// reader instead handles frames from inside one wait of the poller (sockio.Conn.Hold),
// which forgets nothing while it runs: once a read took less than the buffer's room (the
// socket was empty then), the reader handles what it has and waits at once; a frame that
// arrives meanwhile ends the wait.
//
// Inside the wait a frame is handled only when all of it is buffered
// (h2frame.Reader.Next), so that reading it never reads the socket. A frame larger than
// the buffer, or a header block that CONTINUATION frames go on with, is read the usual
// way, after the wait ends (readOne); the wait then begins again.

// HeldSocketer is a connection wrapper whose reads h2server may make on the socket
// underneath, inside the poller's wait. HeldSocket returns that socket once the wrapper
// has handed on every byte it held itself and passes the rest through unchanged; nil
// until then (the server reads through the wrapper meanwhile, and asks again).
type HeldSocketer interface {
	HeldSocket() *sockio.Conn
}

// source is what the connection's bufio.Reader reads: the connection, or the socket
// without waiting while the reader is inside the wait.
type source struct {
	nc   net.Conn
	sock *sockio.Conn // set while held
	// empty: a read since the last wake-up found the socket empty or took less than it
	// could; another before the next wake-up would find nothing.
	empty bool
}

func (s *source) Read(p []byte) (int, error) {
	if s.sock == nil {
		return s.nc.Read(p)
	}
	if s.empty {
		return 0, sockio.ErrWouldBlock
	}
	n, err := s.sock.TryRead(p)
	if n < len(p) {
		s.empty = true
	}
	return n, err
}

// heldState is serveHeld's, between the calls of its step.
type heldState struct {
	from HeldSocketer // the connection, when it is such a wrapper
	step func() sockio.Next
	end  bool  // the connection ends
	err  error // a read failed: readFailed reports it once the wait has ended
}

// serveHeld reads and handles frames inside the poller's wait until one must be read the
// usual way (true) or the connection ends (false).
func (c *conn) serveHeld() bool {
	if c.held.step == nil {
		c.held.step = c.step
	}
	c.src.sock = c.sock
	err := c.sock.Hold(c.held.step)
	c.src.sock = nil
	end, rerr := c.held.end, c.held.err
	c.held.end, c.held.err = false, nil
	switch {
	case end:
		return false
	case rerr != nil:
		return c.readFailed(rerr)
	case err != nil: // closed (the reaper, Shutdown)
		return c.readFailed(err)
	}
	return true
}

// step is Hold's step: handle every frame buffered whole, read when more is needed, and
// wait when the socket is known to be empty.
func (c *conn) step() sockio.Next {
	c.src.empty = false // Hold began, or the socket became readable since the last read
	for {
		if c.cut.Load() {
			c.held.end = true
			return sockio.Skip
		}
		switch c.rd.Next() {
		case h2frame.Buffered:
			if !c.readOne() {
				c.held.end = true
				return sockio.Skip
			}
			continue
		case h2frame.Blocking:
			return sockio.Skip
		}
		if c.src.empty {
			if c.br.Buffered() > 0 {
				c.flushAnswers() // part of a frame came: answers to the frames before it go out now
			}
			return sockio.WaitRead
		}
		// One read (source: a second would find nothing) into the buffer's free room.
		_, err := c.br.Peek(c.br.Size())
		if err != nil && !errors.Is(err, sockio.ErrWouldBlock) && !errors.Is(err, bufio.ErrBufferFull) {
			c.held.err = err
			return sockio.Skip
		}
	}
}

// flushAnswers writes the answers (SETTINGS and PING acks, resets) queued by the frames
// read so far. readOne writes them once no byte is buffered; when part of a frame is, the
// peer may be waiting for one of them before it sends the rest.
func (c *conn) flushAnswers() {
	c.mu.Lock()
	if len(c.wbuf) > 0 && !c.flushSoon {
		_ = c.flushLocked() // an error ends the connection (cutLocked)
	}
	c.mu.Unlock()
}
