package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Protocol sniffing (Istio's protocol auto-detection) for a captured outbound connection
// whose port leaves the protocol undeclared: the control plane sends that port's listener
// with Envoy's tls_inspector and http_inspector and chains that match on what they learn
// (an HTTP chain for plaintext HTTP/1.x and h2c, TLS passthrough chains by SNI, a TCP chain
// for the rest). Before the chain is chosen the proxy reads the connection's first bytes:
//
//	0x16 …                         a TLS ClientHello: transport "tls", its SNI and ALPN (sni.go)
//	PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n  the HTTP/2 preface: "h2c"
//	<token> <target> HTTP/1.x\r\n   an HTTP/1 request line: "http/1.1" or "http/1.0"
//	anything else                   opaque TCP (transport "raw_buffer", no application protocol)
//
// The bytes read are replayed to the chosen chain. Istio's protocolDetectionTimeout is 0 by
// default (no timeout: Envoy's listener_filters_timeout disabled), so a client that waits
// for the server to speak first waits here too, as in Istio: server-first protocols need a
// declared port (TCP, MySQL, …), whose listener has no inspector and is never sniffed.

// protocolDetectionTimeout is how long sniffing waits for the first bytes; 0: no limit
// (Istio's default meshConfig.protocolDetectionTimeout).
const protocolDetectionTimeout = 0 * time.Second

// maxHTTPInspect bounds the bytes read looking for an HTTP/1 request line (Envoy's
// http_inspector reads at most 8 KiB).
const maxHTTPInspect = 8 << 10

// h2Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Application protocols the HTTP inspector reports, as Envoy names them.
const (
	protoHTTP10 = "http/1.0"
	protoHTTP11 = "http/1.1"
	protoH2C    = "h2c"
)

// sniffed is what sniffing learned about a connection: the filter chain match's inputs.
type sniffed struct {
	hello clientHello // TLS: transport "tls", SNI, ALPN
	app   string      // plaintext: "http/1.1", "http/1.0", "h2c" or ""
}

// connection is the ChainForConnection input for a connection to port.
func (s sniffed) connection(port uint16) Connection {
	c := Connection{DestinationPort: port, ServerName: s.hello.serverName, TransportProtocol: s.hello.transportProtocol(), ApplicationProtocols: s.hello.alpn}
	if !s.hello.tls && s.app != "" {
		c.ApplicationProtocols = []string{s.app}
	}
	return c
}

// sniff classifies the first bytes of a connection. done is false while more bytes could
// change the answer; err is set only for a ClientHello over Envoy's size limit.
func sniff(b []byte) (s sniffed, done bool, err error) {
	if len(b) == 0 {
		return sniffed{}, false, nil
	}
	if b[0] == 0x16 { // a TLS handshake record
		h, err := parseClientHello(b)
		switch {
		case err == nil:
			return sniffed{hello: h}, true, nil
		case errors.Is(err, errNeedMore):
			return sniffed{}, false, nil
		case errors.Is(err, errHelloSize):
			return sniffed{}, true, err
		}
		return sniffed{}, true, nil // not TLS after all: opaque
	}
	app, done := sniffHTTP(b)
	return sniffed{app: app}, done, nil
}

// sniffHTTP recognises the HTTP/2 preface or an HTTP/1.0/1.1 request line, as Envoy's
// http_inspector: app is "" for anything else.
func sniffHTTP(b []byte) (app string, done bool) {
	if n := min(len(b), len(h2Preface)); b[0] == 'P' && string(b[:n]) == h2Preface[:n] {
		if n == len(h2Preface) {
			return protoH2C, true
		}
		return "", false
	}
	// method SP request-target SP HTTP/1.x CRLF
	i := 0
	for ; i < len(b) && b[i] != ' '; i++ {
		if !isTokenChar(b[i]) {
			return "", true
		}
	}
	if i == 0 && len(b) > 0 {
		return "", true // no method
	}
	if i == len(b) {
		return "", len(b) >= maxHTTPInspect
	}
	i++ // SP
	start := i
	for ; i < len(b) && b[i] != ' '; i++ {
		if b[i] <= ' ' || b[i] == 0x7f {
			return "", true
		}
	}
	if i == len(b) {
		return "", len(b) >= maxHTTPInspect
	}
	if i == start {
		return "", true // empty target
	}
	rest := b[i+1:]
	const v = "HTTP/1.x\r\n"
	for j := 0; j < len(rest); j++ {
		switch {
		case j == 7:
			if rest[j] != '0' && rest[j] != '1' {
				return "", true
			}
		case j == 8 && rest[j] == '\n':
			return version(rest[7]), true
		case j == 9:
			if rest[j] != '\n' {
				return "", true
			}
			return version(rest[7]), true
		case rest[j] != v[j]:
			return "", true
		}
	}
	return "", false
}

func version(minor byte) string {
	if minor == '0' {
		return protoHTTP10
	}
	return protoHTTP11
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110 §5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// peekProtocol reads c's first bytes until sniff decides, the peer stops sending (EOF: what
// arrived is classified as it is), or timeout passes (0: none). It returns what it learned
// and the bytes read, which the caller must replay.
func peekProtocol(c net.Conn, timeout time.Duration) (sniffed, []byte, error) {
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return sniffed{}, nil, err
		}
		defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	}
	buf := make([]byte, 0, 2048)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, rerr := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		s, done, err := sniff(buf)
		switch {
		case err != nil:
			return sniffed{}, buf, err
		case done:
			return s, buf, nil
		case rerr != nil && len(buf) > 0:
			return s, buf, nil // the peer said all it will before the answer: opaque so far
		case rerr != nil:
			return sniffed{}, nil, fmt.Errorf("sniffing the protocol: %w", rerr)
		}
	}
}

// sniffCaptured sniffs a captured connection for listener l's chains: the connection to
// go on with (the bytes read replayed) and the chain match's inputs; ok is false when the
// connection was closed (it ended before saying anything, or its ClientHello is too large).
func (p *Proxy) sniffCaptured(c net.Conn, l *resource.Listener, dst netip.AddrPort) (net.Conn, Connection, bool) {
	s, buf, err := peekProtocol(c, protocolDetectionTimeout)
	if err != nil {
		p.log.Debug("protocol sniffing: closing connection", "listener", l.Name, "remote", c.RemoteAddr().String(), "error", err)
		_ = c.Close()
		return nil, Connection{}, false
	}
	if len(buf) > 0 {
		c = &prefixConn{Conn: c, prefix: buf}
	}
	return c, s.connection(dst.Port()), true
}

// SniffsPlaintext reports whether a sidecar's inbound port tells plaintext protocols apart
// (an undeclared port: its HTTP chain matches raw_buffer with the HTTP inspector's
// protocols), so that its connections are sniffed rather than only TLS-inspected.
func SniffsPlaintext(l *resource.Listener, port uint16) bool {
	for _, fc := range l.FilterChains {
		if m := fc.Match; m.DestinationPort == uint32(port) && m.TransportProtocol == "raw_buffer" && len(m.ApplicationProtocols) > 0 {
			return true
		}
	}
	return false
}

// inspectInbound reads what an inbound port's chains match on from a connection's first
// bytes (replayed in the returned connection): the TLS inspector's SNI and ALPN, and for an
// undeclared port the HTTP inspector's protocol too (no timeout, as Istio's
// protocolDetectionTimeout; TLS inspection alone has the listener filters' timeout).
func (p *Proxy) inspectInbound(l *resource.Listener, c net.Conn, port uint16) (net.Conn, Connection, error) {
	var (
		s   sniffed
		buf []byte
		err error
	)
	if SniffsPlaintext(l, port) {
		s, buf, err = peekProtocol(c, protocolDetectionTimeout)
	} else {
		s.hello, buf, err = peekClientHello(c, p.opts.ListenerFiltersTimeout)
	}
	if err != nil {
		return nil, Connection{}, err
	}
	if len(buf) > 0 {
		c = &prefixConn{Conn: c, prefix: buf}
	}
	return c, s.connection(port), nil
}
