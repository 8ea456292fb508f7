package h2client

import (
	"errors"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// headerBlock is a response header block (HEADERS and its CONTINUATIONs) decoded with the
// connection's HPACK decoder into fields reused block after block: the reader goroutine's
// own, so a response's headers cost no frame or field-list allocations (x/net's
// MetaHeadersFrame makes a frame, closures and a growing list per block).
type headerBlock struct {
	streamID  uint32
	endStream bool
	fields    []hpack.HeaderField
	pseudo    int    // the leading pseudo-header fields
	size      uint32 // decoded size (RFC 9113 §6.5.2), bounded by maxHeaderList
	raw       int    // encoded bytes
	truncated bool   // over maxHeaderList: the rest was dropped
	invalid   error  // a malformed field: the stream fails with PROTOCOL_ERROR
	continues bool   // a fragment without END_HEADERS came last: a CONTINUATION is due
}

func (h *headerBlock) StreamEnded() bool                  { return h.endStream }
func (h *headerBlock) PseudoFields() []hpack.HeaderField  { return h.fields[:h.pseudo] }
func (h *headerBlock) RegularFields() []hpack.HeaderField { return h.fields[h.pseudo:] }

// PseudoValue is the value of pseudo-header ":"+name, "" when absent.
func (h *headerBlock) PseudoValue(name string) string {
	for _, f := range h.fields[:h.pseudo] {
		if len(f.Name) == len(name)+1 && f.Name[1:] == name {
			return f.Value
		}
	}
	return ""
}

// startBlock begins the block of a HEADERS frame.
func (cc *ClientConn) startBlock(f *http2.HeadersFrame) error {
	cc.hb = headerBlock{streamID: f.StreamID, endStream: f.StreamEnded(), fields: cc.hb.fields[:0]}
	return cc.blockFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

// blockFragment decodes one fragment of the block; the last one hands the block on.
func (cc *ClientConn) blockFragment(frag []byte, last bool) error {
	h := &cc.hb
	h.continues = !last
	h.raw += len(frag)
	if h.raw > 2*maxHeaderList {
		return http2.ConnectionError(http2.ErrCodeProtocol) // a flood of header bytes
	}
	whole := last && h.raw == len(frag) // the block in one fragment
	if whole {
		if fields, ok := cc.blocks.lookup(frag); ok {
			for _, f := range fields {
				cc.emit(f)
			}
			return cc.endBlock(h)
		}
	}
	if _, err := cc.hdec.Write(frag); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if whole {
		cc.blocks.sawBlock(frag)
	} else if h.raw == len(frag) {
		cc.blocks.lostTrack() // a block in fragments: its size updates are not followed
	}
	if !last {
		return nil
	}
	if err := cc.hdec.Close(); err != nil {
		return http2.ConnectionError(http2.ErrCodeCompression)
	}
	if whole && h.invalid == nil && !h.truncated {
		cc.blocks.offer(frag, h.fields)
	}
	return cc.endBlock(h)
}

// endBlock hands a decoded block on, or fails its stream when a field was malformed.
func (cc *ClientConn) endBlock(h *headerBlock) error {
	if h.invalid != nil {
		cc.streamFailed(h.streamID, http2.StreamError{StreamID: h.streamID, Code: http2.ErrCodeProtocol, Cause: h.invalid}, http2.ErrCodeProtocol)
		return nil
	}
	return cc.onHeaders(h)
}

// emit takes one decoded field (hpack's emit function, set once).
func (cc *ClientConn) emit(f hpack.HeaderField) {
	h := &cc.hb
	if h.invalid != nil || h.truncated {
		return
	}
	if !http1.ValidValueString(f.Value) {
		h.invalid = errors.New("malformed response: invalid value of field " + f.Name) // not the value: it may be a secret
		return
	}
	if strings.HasPrefix(f.Name, ":") {
		switch {
		case h.pseudo != len(h.fields):
			h.invalid = errors.New("malformed response: pseudo-header field after a regular one")
		case f.Name != ":status":
			h.invalid = errors.New("malformed response: invalid pseudo-header field " + f.Name)
		case h.pseudo > 0:
			h.invalid = errors.New("malformed response: duplicate :status")
		}
		if h.invalid != nil {
			return
		}
		h.pseudo++
	} else if !validFieldName(f.Name) {
		h.invalid = errors.New("malformed response: invalid field name " + f.Name)
		return
	}
	size := f.Size()
	if h.size+size > maxHeaderList {
		h.truncated = true
		return
	}
	h.size += size
	h.fields = append(h.fields, f)
}

// validFieldName: a token in lower case (RFC 9113 §8.2.1).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !httpguts.IsTokenRune(rune(c)) || ('A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
