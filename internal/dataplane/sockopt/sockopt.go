// Package sockopt sets the socket options that let the sidecar notice a dead peer: TCP
// keepalive and TCP_USER_TIMEOUT. It sits under every socket the proxy owns:
//
//	downstream client ─► proxy (accepted sockets: Listener) ─► pool (dialled sockets: Control) ─► app
//
// Why both. Keepalive probes find a peer that vanished while the connection is idle (the
// common case for a quiet watch or exec stream): after Idle without a packet from the peer,
// a probe goes out every Interval, and after Probes unanswered probes the kernel resets the
// connection. TCP_USER_TIMEOUT covers the other case, data written but never acknowledged
// (the peer vanished while we were sending): the kernel gives up after UserTimeout instead
// of retransmitting for ~15 minutes (tcp_retries2). With TCP_USER_TIMEOUT set, Linux also
// uses it as the keepalive verdict (a connection is reset at the first unanswered probe once
// UserTimeout has passed since the peer was last heard), so Lucid sets UserTimeout to the
// keepalive's own bound, Idle + Interval×Probes: both mechanisms then agree.
//
// Defaults (Default): Idle 10 s, Interval 5 s, Probes 3, so a dead peer is found within
// 25 s of its last packet (and a stuck write within 25 s), under the 30 s Lucid promises.
// Linkerd uses a 10 s keepalive and a 30 s user timeout; Envoy and Istio set nothing, so
// Linux's defaults (7200 s, 75 s, 9 probes: over 2 hours) apply there. The cost is one
// 66-byte probe per idle connection every 10 s.
package sockopt

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Keepalive is the dead-peer detection of one socket. The zero value means "use Default";
// Disabled turns keepalive and the user timeout off.
type Keepalive struct {
	Disabled bool
	Idle     time.Duration // keepalive_time: quiet time before the first probe
	Interval time.Duration // keepalive_interval: time between probes
	Probes   int           // keepalive_probes: unanswered probes before the reset
	// UserTimeout is TCP_USER_TIMEOUT; 0 means Idle + Interval×Probes, negative leaves it unset.
	UserTimeout time.Duration
}

// The defaults (see the package comment).
const (
	DefaultIdle     = 10 * time.Second
	DefaultInterval = 5 * time.Second
	DefaultProbes   = 3
)

// Default returns Lucid's default keepalive: found dead within 25 s.
func Default() Keepalive {
	return Keepalive{Idle: DefaultIdle, Interval: DefaultInterval, Probes: DefaultProbes}
}

// Resolved fills unset fields from Default (a DestinationRule may set only some of them,
// as Istio's tcpKeepalive allows) and computes the user timeout.
func (k Keepalive) Resolved() Keepalive {
	if k.Disabled {
		return k
	}
	if k.Idle <= 0 {
		k.Idle = DefaultIdle
	}
	if k.Interval <= 0 {
		k.Interval = DefaultInterval
	}
	if k.Probes <= 0 {
		k.Probes = DefaultProbes
	}
	if k.UserTimeout == 0 {
		k.UserTimeout = k.Bound()
	}
	return k
}

// Bound is how long after the peer's last packet a dead idle peer is detected.
func (k Keepalive) Bound() time.Duration {
	return k.Idle + time.Duration(k.Probes)*k.Interval
}

// String renders the settings for logs and errors.
func (k Keepalive) String() string {
	if k.Disabled {
		return "off"
	}
	r := k.Resolved()
	return fmt.Sprintf("idle %s, interval %s, probes %d, user timeout %s", r.Idle, r.Interval, r.Probes, r.UserTimeout)
}

// netConner is implemented by connection wrappers that expose the connection they wrap.
type netConner interface{ NetConn() net.Conn }

// Apply sets the options on an established connection (accepted or dialled). Connections
// that are not TCP (or wrappers that do not expose one) are left alone.
func Apply(c net.Conn, k Keepalive) error {
	for {
		if tc, ok := c.(*net.TCPConn); ok {
			return applyTCP(tc, k)
		}
		w, ok := c.(netConner)
		if !ok {
			return nil
		}
		c = w.NetConn()
	}
}

func applyTCP(tc *net.TCPConn, k Keepalive) error {
	if k.Disabled {
		if err := tc.SetKeepAlive(false); err != nil {
			return fmt.Errorf("sockopt: keepalive off: %w", err)
		}
		return nil
	}
	k = k.Resolved()
	if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: k.Idle, Interval: k.Interval, Count: k.Probes}); err != nil {
		return fmt.Errorf("sockopt: keepalive: %w", err)
	}
	if k.UserTimeout < 0 {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return fmt.Errorf("sockopt: %w", err)
	}
	return control(rc, k.UserTimeout)
}

// Control returns a net.Dialer/ListenConfig Control function that sets the options on the
// socket before it connects, so the first SYN already carries them. Set it on the dialer
// that makes upstream connections.
func Control(k Keepalive) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		return controlAll(c, k)
	}
}

// ErrUnsupported is returned where the platform cannot set TCP_USER_TIMEOUT.
var ErrUnsupported = errors.New("sockopt: TCP_USER_TIMEOUT is not supported on this platform")

// Listener wraps ln so that every accepted connection gets k.
func Listener(ln net.Listener, k Keepalive) net.Listener {
	return &listener{Listener: ln, k: k}
}

type listener struct {
	net.Listener
	k Keepalive
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	// A failure here (the peer already reset) shows up on the first read; keep the conn.
	_ = Apply(c, l.k)
	return c, nil
}

// ConfigureDialer makes d set k on every socket it dials (before connect), replacing Go's
// own keepalive (15 s idle, 9 probes, no user timeout). A Control already on d runs first.
func ConfigureDialer(d *net.Dialer, k Keepalive) {
	d.KeepAlive = -1
	d.KeepAliveConfig = net.KeepAliveConfig{}
	prev, ctl := d.Control, Control(k)
	if prev == nil {
		d.Control = ctl
		return
	}
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := prev(network, address, c); err != nil {
			return err
		}
		return ctl(network, address, c)
	}
}
