package h2server

import (
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// headerBlock is a HEADERS frame and its CONTINUATIONs, decoded: what x/net's
// MetaHeadersFrame holds, with the same checks, but its fields in a slice the connection
// reuses from one block to the next (no frame and no field slice allocated per request).
// It is the reader's own until the next block.
type headerBlock struct {
	StreamID  uint32
	ended     bool
	hasPrio   bool
	Priority  http2.PriorityParam
	Truncated bool                // the list was over the limit: what is over was dropped
	fields    []hpack.HeaderField // pseudo-fields first
	npseudo   int

	// decoding state
	invalid    bool
	remain     uint32 // bytes of regular fields still allowed
	remainTrl  uint32 // and of "trailer" field values
	sawRegular bool
}

func (h *headerBlock) StreamEnded() bool                  { return h.ended }
func (h *headerBlock) HasPriority() bool                  { return h.hasPrio }
func (h *headerBlock) PseudoFields() []hpack.HeaderField  { return h.fields[:h.npseudo] }
func (h *headerBlock) RegularFields() []hpack.HeaderField { return h.fields[h.npseudo:] }

// headersFrame is what readHeaderBlock needs of a HEADERS frame: from x/net's Framer, or
// read in place (h2frame).
type headersFrame struct {
	streamID        uint32
	ended, complete bool // END_STREAM, END_HEADERS
	hasPrio         bool
	prio            http2.PriorityParam
	frag            []byte
}

func headersOf(f *http2.HeadersFrame) headersFrame {
	return headersFrame{streamID: f.StreamID, ended: f.StreamEnded(), complete: f.HeadersEnded(),
		hasPrio: f.HasPriority(), prio: f.Priority, frag: f.HeaderBlockFragment()}
}

// readHeaderBlock decodes f and the CONTINUATION frames after it (read here: the Framer
// checks they follow on the same stream) into c.hb. Errors as x/net's readMetaFrame: a
// malformed field is a StreamError (HPACK's state is kept), a compression failure or a
// block far over the limit a ConnectionError.
func (c *conn) readHeaderBlock(f headersFrame) (*headerBlock, error) {
	hb := &c.hb
	fields := hb.fields[:0]
	*hb = headerBlock{StreamID: f.streamID, ended: f.ended, hasPrio: f.hasPrio, Priority: f.prio,
		fields: fields, remain: c.cfg.maxHeaderList, remainTrl: c.cfg.maxHeaderList}
	c.dec.SetEmitEnabled(true)
	frag, done := f.frag, f.complete
	for {
		if int64(len(frag)) > 2*int64(hb.remain+hb.remainTrl) || (hb.invalid && !done) {
			return nil, http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if _, err := c.dec.Write(frag); err != nil {
			return nil, http2.ConnectionError(http2.ErrCodeCompression)
		}
		if done {
			break
		}
		nf, err := c.rd.ReadFrame()
		if err != nil {
			return nil, err
		}
		cf := nf.(*http2.ContinuationFrame) // the Framer's frame order check
		frag, done = cf.HeaderBlockFragment(), cf.HeadersEnded()
	}
	if err := c.dec.Close(); err != nil {
		return nil, http2.ConnectionError(http2.ErrCodeCompression)
	}
	if hb.invalid || !pseudosValid(hb.PseudoFields()) {
		return nil, http2.StreamError{StreamID: hb.StreamID, Code: http2.ErrCodeProtocol}
	}
	return hb, nil
}

// emit takes one decoded field into c.hb.
func (c *conn) emit(f hpack.HeaderField) {
	hb := &c.hb
	if !http1.ValidValueString(f.Value) {
		hb.invalid = true
	}
	if strings.HasPrefix(f.Name, ":") {
		if hb.sawRegular {
			hb.invalid = true
		}
	} else {
		hb.sawRegular = true
		if !validWireName(f.Name) {
			hb.invalid = true
		}
	}
	if hb.invalid {
		c.dec.SetEmitEnabled(false)
		return
	}
	remain, size := &hb.remain, f.Size()
	if f.Name == "trailer" {
		n := uint32(strings.Count(f.Value, ",") + 1)
		remain, size = &hb.remainTrl, uint32(len(f.Value))-n+1+n*hpack.HeaderField{}.Size()
	}
	if size > *remain {
		c.dec.SetEmitEnabled(false)
		hb.Truncated = true
		hb.remain, hb.remainTrl = 0, 0
		return
	}
	*remain -= size
	hb.fields = append(hb.fields, f)
	if !hb.sawRegular {
		hb.npseudo++
	}
}

// validWireName reports a field name HTTP/2 allows: a token, in lowercase.
func validWireName(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if !httpguts.IsTokenRune(rune(b)) || ('A' <= b && b <= 'Z') {
			return false
		}
	}
	return true
}

// pseudosValid: request pseudo-fields only, each at most once.
func pseudosValid(pf []hpack.HeaderField) bool {
	for i, f := range pf {
		switch f.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
		default:
			return false
		}
		for _, g := range pf[:i] {
			if g.Name == f.Name {
				return false
			}
		}
	}
	return true
}
