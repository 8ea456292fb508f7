package proxy

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// The TLS inspector (Envoy's envoy.filters.listener.tls_inspector): before a router's
// listener picks a filter chain, it peeks at the connection's first bytes. A TLS
// ClientHello gives the transport protocol "tls", the SNI and the ALPN list; anything
// else is "raw_buffer". The bytes read are replayed to whatever the chosen chain does
// (TLS termination, or a tcp_proxy that passes the TLS through untouched).

// maxClientHello bounds the bytes read while looking for a ClientHello (Envoy's
// tls_inspector max_client_hello_size default: 64 KiB).
const maxClientHello = 64 << 10

// clientHello is what the inspector learns from a connection.
type clientHello struct {
	tls        bool     // the first bytes are a TLS ClientHello (transport protocol "tls")
	serverName string   // server_name extension (host_name), "" when absent
	alpn       []string // application_layer_protocol_negotiation, in the client's order
}

// transportProtocol is the filter chain match's transport_protocol for the connection.
func (h clientHello) transportProtocol() string {
	if h.tls {
		return "tls"
	}
	return "raw_buffer"
}

var (
	errNeedMore  = errors.New("need more bytes")
	errNotTLS    = errors.New("not a TLS ClientHello")
	errHelloSize = fmt.Errorf("ClientHello larger than %d bytes", maxClientHello)
)

// parseClientHello reads a ClientHello from the start of a connection's bytes. It returns
// errNeedMore while the message is incomplete, errNotTLS when the bytes are not a TLS
// handshake (or are malformed: Envoy then goes on as for plaintext), errHelloSize when
// the message is too large.
func parseClientHello(b []byte) (clientHello, error) {
	var hs []byte // the handshake message, reassembled across records
	for len(b) > 0 {
		if b[0] != 0x16 { // handshake record
			return clientHello{}, errNotTLS
		}
		if len(b) < 5 {
			return clientHello{}, errNeedMore
		}
		if b[1] != 3 { // record version major 3 (SSL 3.0 … TLS 1.3)
			return clientHello{}, errNotTLS
		}
		n := int(b[3])<<8 | int(b[4])
		if n == 0 || n > 16384+2048 {
			return clientHello{}, errNotTLS
		}
		if len(b) < 5+n {
			hs = append(hs, b[5:]...)
			if err := checkHandshakeHeader(hs); err != nil {
				return clientHello{}, err
			}
			return clientHello{}, errNeedMore
		}
		hs = append(hs, b[5:5+n]...)
		b = b[5+n:]
		if err := checkHandshakeHeader(hs); err != nil {
			return clientHello{}, err
		}
		if len(hs) >= 4 && len(hs) >= 4+handshakeLen(hs) {
			return parseHelloBody(hs[4 : 4+handshakeLen(hs)])
		}
	}
	return clientHello{}, errNeedMore
}

func handshakeLen(hs []byte) int { return int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]) }

// checkHandshakeHeader rejects a handshake that is not a ClientHello or is too large, as
// soon as its first bytes are known.
func checkHandshakeHeader(hs []byte) error {
	if len(hs) > 0 && hs[0] != 1 { // client_hello
		return errNotTLS
	}
	if len(hs) >= 4 && handshakeLen(hs) > maxClientHello {
		return errHelloSize
	}
	return nil
}

// reader is a bounds-checked cursor over a message; a short read sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() int {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(b[0])<<8 | int(b[1])
}

// vec reads a length-prefixed vector whose length has lenBytes (1 or 2) bytes.
func (r *reader) vec(lenBytes int) *reader {
	n := r.u8()
	if lenBytes == 2 {
		n = n<<8 | r.u8()
	}
	return &reader{b: r.take(n), bad: r.bad}
}

// parseHelloBody reads the fields of a ClientHello up to its extensions (RFC 8446 4.1.2).
func parseHelloBody(body []byte) (clientHello, error) {
	r := &reader{b: body}
	r.take(2)  // legacy_version
	r.take(32) // random
	r.vec(1)   // legacy_session_id
	r.vec(2)   // cipher_suites
	r.vec(1)   // legacy_compression_methods
	if r.bad {
		return clientHello{}, errNotTLS
	}
	h := clientHello{tls: true}
	if len(r.b) == 0 { // no extensions (SSLv3-style hello)
		return h, nil
	}
	exts := r.vec(2)
	for len(exts.b) > 0 && !exts.bad {
		typ := exts.u16()
		data := exts.vec(2)
		switch typ {
		case 0: // server_name
			list := data.vec(2)
			for len(list.b) > 0 && !list.bad {
				nameType := list.u8()
				name := list.vec(2)
				if nameType == 0 && !name.bad && h.serverName == "" {
					h.serverName = string(name.b)
				}
			}
			if list.bad {
				return clientHello{}, errNotTLS
			}
		case 16: // application_layer_protocol_negotiation
			list := data.vec(2)
			for len(list.b) > 0 && !list.bad {
				p := list.vec(1)
				if !p.bad && len(p.b) > 0 {
					h.alpn = append(h.alpn, string(p.b))
				}
			}
			if list.bad {
				return clientHello{}, errNotTLS
			}
		}
		if data.bad {
			return clientHello{}, errNotTLS
		}
	}
	if exts.bad {
		return clientHello{}, errNotTLS
	}
	return h, nil
}

// peekClientHello reads from c until its first bytes are known to be a ClientHello or
// not, waiting at most timeout (Envoy's listener_filters_timeout, 15 s). It returns what
// it learned and the bytes read, which the caller must replay.
func peekClientHello(c net.Conn, timeout time.Duration) (clientHello, []byte, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return clientHello{}, nil, err
	}
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, 2048)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		h, perr := parseClientHello(buf)
		switch {
		case perr == nil:
			return h, buf, nil
		case errors.Is(perr, errNotTLS):
			return clientHello{}, buf, nil
		case errors.Is(perr, errHelloSize), len(buf) > maxClientHello+5*8:
			return clientHello{}, buf, errHelloSize
		}
		if err != nil {
			return clientHello{}, buf, fmt.Errorf("reading the ClientHello: %w", err)
		}
	}
}

// prefixConn is a connection whose first bytes were already read (the ClientHello the TLS
// inspector peeked at).
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite passes a half-close on to the TCP connection (a passthrough tcp_proxy).
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
