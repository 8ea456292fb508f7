package h2server

import (
	"golang.org/x/net/http2"
)

// process handles one frame read from the client (a header block decoded by
// readHeaderBlock in place of its HEADERS). Called with mu held. A returned
// http2.StreamError resets that stream; any other error ends the connection.
func (c *conn) process(f any) error {
	if !c.preface {
		// RFC 9113 3.4: the client's preface ends with a SETTINGS frame.
		sf, ok := f.(*http2.SettingsFrame)
		if !ok || sf.IsAck() {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.preface = true
	}
	if c.goingAway && c.werr != nil {
		return nil // closing after an error: nothing more is served
	}
	switch f := f.(type) {
	case *headerBlock:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.writePing(true, f.Data)
			c.controlOut++
			if c.controlOut > maxControl {
				return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
			}
		}
		return nil
	case *http2.RSTStreamFrame:
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 6.4: an idle stream
		}
		if st := c.streams[f.StreamID]; st != nil {
			c.closeLocked(st, clientResetError{f.ErrCode})
		}
		return nil
	case *http2.GoAwayFrame:
		// The client goes away: the streams it has opened finish, then the connection closes.
		c.goAwayLocked(http2.ErrCodeNo, false)
		return nil
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients do not push
	}
	return nil // unknown frame types are ignored (RFC 9113 4.1)
}

func (c *conn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	if f.NumSettings() > 100 {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			d := int64(s.Val) - c.peerWin
			c.peerWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += d
				if st.sendWin > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
			c.wcond.Broadcast()
		case http2.SettingMaxFrameSize:
			c.peerFrame = int(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.writeSettingsAck()
	c.controlOut++
	if c.controlOut > maxControl {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

func (c *conn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	if f.StreamID == 0 {
		c.sendWin += inc
		if c.sendWin > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.wcond.Broadcast()
		return nil
	}
	st := c.streams[f.StreamID]
	if st == nil {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil // a stream that has ended
	}
	st.sendWin += inc
	if st.sendWin > maxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	c.wcond.Broadcast()
	return nil
}

// processData takes a DATA frame into its stream's body, counting it against both
// receive windows; bytes nobody will read (padding, a stream that has ended or whose body
// is closed) are given back to the connection's window at once.
func (c *conn) processData(f *http2.DataFrame) error {
	n := int64(f.Length)
	if n > c.recvWin {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWin -= n
	id := f.StreamID
	st := c.streams[id]
	if st == nil {
		if id > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // RFC 9113 6.1: an idle stream
		}
		c.consumedLocked(nil, n) // a stream that has ended: its data is dropped
		return nil
	}
	if st.remoteDone {
		c.consumedLocked(nil, n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed}
	}
	if n > st.recvWin {
		c.consumedLocked(nil, n)
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeFlowControl}
	}
	st.recvWin -= n
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		c.consumedLocked(st, pad)
	}
	st.got += int64(len(data))
	if st.declLen >= 0 && st.got > st.declLen {
		c.consumedLocked(nil, int64(len(data)))
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if len(data) > 0 {
		if st.bodyClosed {
			c.consumedLocked(nil, int64(len(data)))
		} else {
			st.appendBody(data)
		}
	}
	if f.StreamEnded() {
		if st.declLen >= 0 && st.got != st.declLen {
			return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
		}
		st.endRemoteLocked(nil)
	}
	return nil
}
