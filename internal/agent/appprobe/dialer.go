package appprobe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
)

// Source addresses of probe connections, as Istio's agent uses them: the iptables rules
// let traffic from 127.0.0.6 (::6) bypass the inbound capture, so probes reach the app
// even under STRICT mTLS.
var (
	DefaultSourceV4 = netip.MustParseAddr("127.0.0.6")
	DefaultSourceV6 = netip.MustParseAddr("::6")
)

// dialer opens probe connections the way the kubelet's probe dialer does (a fresh
// connection, SO_LINGER 1 s so TIME-WAIT stays short), from the source address that
// bypasses the sidecar. Every connection reports what happened on it to the probe's
// trace, found in the dial context.
type dialer struct {
	source4, source6 netip.Addr // invalid: let the kernel choose
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	tr := traceFrom(ctx)
	src := d.sourceFor(addr)
	nd := net.Dialer{Control: setLinger}
	if src.IsValid() {
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil && src.IsValid() && errors.Is(err, syscall.EADDRNOTAVAIL) {
		// The source address is not assigned here (::6 outside a pod, say): probe from
		// the default address rather than not at all, and say so.
		tr.note("source address " + src.String() + " is not assigned on this host; probed from the default address")
		nd.LocalAddr = nil
		c, err = nd.DialContext(ctx, network, addr)
	}
	if err != nil {
		tr.dialFailed(err)
		return nil, err
	}
	tr.connected()
	return &countingConn{Conn: c, tr: tr}, nil
}

// sourceFor picks the source address of the target's family. The target is a local
// address (the pod's), so a loopback source reaches it through lo as Istio's does.
func (d *dialer) sourceFor(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return d.source4 // a name ("localhost"): the dialer then tries its IPv4 addresses only
	}
	if ip.Unmap().Is4() {
		return d.source4
	}
	return d.source6
}

// countingConn counts the bytes the app sent, so an error can say how far the response got.
type countingConn struct {
	net.Conn
	tr *trace
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.tr.read.Add(int64(n))
	return n, err
}

// trace is what happened during one probe, for the explanation of a failure.
type trace struct {
	read      atomic.Int64 // bytes received from the app
	dialed    atomic.Bool  // a connection was established
	lastDial  atomic.Pointer[error]
	noteText  atomic.Pointer[string]
	gotHeader atomic.Bool // the response's status line and headers arrived
}

func (t *trace) connected() {
	if t != nil {
		t.dialed.Store(true)
	}
}

func (t *trace) dialFailed(err error) {
	if t != nil {
		t.lastDial.Store(&err)
	}
}

func (t *trace) note(s string) {
	if t != nil {
		t.noteText.Store(&s)
	}
}

func (t *trace) dialErr() error {
	if p := t.lastDial.Load(); p != nil {
		return *p
	}
	return nil
}

type traceKey struct{}

func withTrace(ctx context.Context, t *trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// traceFrom returns the probe's trace, or a throwaway one.
func traceFrom(ctx context.Context) *trace {
	if t, ok := ctx.Value(traceKey{}).(*trace); ok {
		return t
	}
	return &trace{}
}
