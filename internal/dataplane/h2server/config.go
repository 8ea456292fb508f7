package h2server

import (
	"math"
	"net/http"
	"time"
)

// config is the Server's settings with the defaults filled in, computed once.
type config struct {
	maxStreams     uint32
	maxFrame       uint32 // SETTINGS_MAX_FRAME_SIZE we advertise (what we read)
	streamWindow   int32  // SETTINGS_INITIAL_WINDOW_SIZE we advertise
	connWindow     int32  // the connection's receive window
	maxHeaderList  uint32 // SETTINGS_MAX_HEADER_LIST_SIZE we advertise
	decoderTable   uint32
	pingAfter      time.Duration // a quiet connection is PINGed (0: never)
	pingTimeout    time.Duration // and closed without an answer
	tick           time.Duration
	idleTimeout    time.Duration
	prefaceTimeout time.Duration
}

// Defaults, as net/http's HTTP/2 server has them.
const (
	defaultMaxStreams   = 250
	defaultMaxFrame     = 1 << 20
	defaultWindow       = 1 << 20
	defaultDecoderTable = 4096
	defaultPingTimeout  = 15 * time.Second
	initialWindow       = 65535 // RFC 9113 6.9.2
	maxWindow           = 1<<31 - 1
	minFrame            = 16 << 10
	maxFrameLimit       = 1<<24 - 1
	tickCeiling         = 250 * time.Millisecond
	tickFloor           = 5 * time.Millisecond
	goAwayClose         = time.Second // a connection told GOAWAY with no stream left closes after this
)

func (s *Server) configure() {
	c := config{
		maxStreams:     defaultMaxStreams,
		maxFrame:       defaultMaxFrame,
		streamWindow:   defaultWindow,
		connWindow:     defaultWindow,
		decoderTable:   defaultDecoderTable,
		idleTimeout:    s.IdleTimeout,
		prefaceTimeout: 10 * time.Second,
	}
	if h := s.Config; h != nil {
		if h.MaxConcurrentStreams > 0 {
			c.maxStreams = uint32(min(h.MaxConcurrentStreams, 1<<31-1))
		}
		if h.MaxReadFrameSize >= minFrame && h.MaxReadFrameSize <= maxFrameLimit {
			c.maxFrame = uint32(h.MaxReadFrameSize)
		}
		if h.MaxReceiveBufferPerStream >= initialWindow && h.MaxReceiveBufferPerStream <= maxWindow {
			c.streamWindow = int32(h.MaxReceiveBufferPerStream)
		}
		if h.MaxReceiveBufferPerConnection >= initialWindow && h.MaxReceiveBufferPerConnection <= maxWindow {
			c.connWindow = int32(h.MaxReceiveBufferPerConnection)
		}
		if h.MaxDecoderHeaderTableSize > 0 && uint64(h.MaxDecoderHeaderTableSize) <= math.MaxUint32 {
			c.decoderTable = uint32(h.MaxDecoderHeaderTableSize)
		}
		if h.SendPingTimeout > 0 {
			c.pingAfter = h.SendPingTimeout
			c.pingTimeout = defaultPingTimeout
			if h.PingTimeout > 0 {
				c.pingTimeout = h.PingTimeout
			}
		}
	}
	n := s.MaxHeaderBytes
	if n <= 0 {
		n = http.DefaultMaxHeaderBytes
	}
	c.maxHeaderList = uint32(min(n+10*32, 1<<31-1)) // net/http's padding: 32 bytes a field, 10 fields
	c.tick = tickCeiling
	for _, d := range []time.Duration{c.pingAfter, c.pingTimeout, c.idleTimeout} {
		if d > 0 && d/4 < c.tick {
			c.tick = max(d/4, tickFloor)
		}
	}
	s.cfg = c
}
