package pool

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/sockio"
)

// Defaults applied when a cluster leaves a setting unset (Envoy's defaults).
const (
	defaultConnectTimeout = 5 * time.Second
	maxIdlePerHost        = 1024
)

// Counters receives a host's (and its cluster's) connection events. Implementations must
// be safe for concurrent use: a connection may close on a transport goroutine.
type Counters interface {
	ConnOpened()    // a connection was established (upstream_cx_total)
	ConnClosed()    // a connection counted by ConnOpened closed (upstream_cx_destroy)
	ConnectFailed() // a connection attempt failed or timed out (upstream_cx_connect_fail)
}

// settings are the cluster fields that shape connections. Two clusters with equal settings
// can share a pool, so an Update that changes only endpoints or routes keeps connections.
type settings struct {
	protocol       resource.Protocol
	connectTimeout time.Duration
	idleTimeout    time.Duration
	maxReqPerConn  uint32
	maxConns       uint32
	// h1.go: circuit breaker max_pending_requests, max_connection_duration
	maxPending      uint32
	maxConnDuration time.Duration
	keepalive       keepalive // keepalive.go: TCP keepalive, user timeout, HTTP/2 PINGs
	maxStreams      uint32    // h2.go: http2_protocol_options.max_concurrent_streams
	transport       string    // tls.go: the cluster's transport sockets, summed up
	// upstream_bind_config: the connections' local address
	bind netip.Addr
	// source: the downstream client's address and mark (origsrc.go), for a pool From made
	source OriginalSource
}

func settingsOf(c *resource.Cluster) settings {
	return settings{
		protocol:        c.Protocol,
		connectTimeout:  c.ConnectTimeout,
		idleTimeout:     c.IdleTimeout,
		maxReqPerConn:   c.MaxRequestsPerConnection,
		maxConns:        c.MaxConnections,
		maxPending:      c.MaxPendingRequests,
		maxConnDuration: c.MaxConnectionDuration,
		keepalive:       keepaliveOf(c),
		maxStreams:      c.MaxConcurrentStreams,
		transport:       transportKey(c),
		bind:            c.BindAddress,
	}
}

// Pool is the upstream connection pool of one cluster. It is safe for concurrent use.
type Pool struct {
	name     string
	settings settings
	log      *slog.Logger
	h1       *h1             // HTTP1 clusters, and Downstream clusters for HTTP/1 requests (h1.go)
	h2       *http.Transport // HTTP2 clusters (h2c, prior knowledge), Downstream for HTTP/2: its dialer (and net/http's ClientConns with LUCID_HTTP2_CLIENT=nethttp)
	h2l      *h2lim          // h2.go: the HTTP/2 connections, with Envoy's pool limits when set; nil without h2

	source   netip.Addr      // local address for loopback upstreams (see Set.SetSourceAddress)
	inflight atomic.Int64    // RoundTrips whose response body is not yet closed
	retired  atomic.Bool     // no longer in the Set: close idle connections when drained
	idle     *idleState      // idle.go: the hosts' learned idle timeouts (HTTP/1.1)
	upTLS    *upstreamTLSRef // tls.go: the Set's TLS decision for new connections
	sources  sourcePools     // origsrc.go: per-client pools (From)
}

func newPool(name string, st settings, source netip.Addr, idle *idleState, log *slog.Logger) *Pool {
	p := &Pool{name: name, settings: st, source: source, idle: idle, log: log.With("cluster", name)}
	switch st.protocol {
	case resource.HTTP2:
		p.h2 = p.transport(true)
	case resource.Downstream:
		p.h1 = newH1(p, p.dialer(p.netDialer()))
		p.h2 = p.transport(true)
	default:
		p.h1 = newH1(p, p.dialer(p.netDialer()))
	}
	if p.h2 != nil {
		// h2.go: every HTTP/2 request runs on the pool's own connections (h2client's, on
		// connections of the Transport's dialer), with Envoy's limits when the cluster sets
		// them.
		p.h2l = newH2Lim(p, p.h2)
	}
	return p
}

func (p *Pool) transport(h2c bool) *http.Transport {
	var protos http.Protocols
	if h2c {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	d := p.netDialer()
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         p.dialer(d),
		Protocols:           &protos,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: maxIdlePerHost,
		IdleConnTimeout:     p.settings.idleTimeout,
		DisableKeepAlives:   p.settings.maxReqPerConn == 1,
	}
	// Circuit breaker max_connections. Istio sets 2^32-1 (no limit); net/http waits for a
	// free connection instead of failing with UO, and counts per endpoint, not per cluster.
	if m := p.settings.maxConns; m > 0 && m < math.MaxInt32 {
		t.MaxConnsPerHost = int(m)
	}
	if h2c {
		t.HTTP2 = p.settings.keepalive.http2Config()
	}
	return t
}

// netDialer is the dialer of every upstream connection: the connect timeout, and the
// keepalive settings (keepalive.go).
func (p *Pool) netDialer() *net.Dialer {
	connectTimeout := p.settings.connectTimeout
	if connectTimeout <= 0 {
		connectTimeout = defaultConnectTimeout
	}
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: -1}
	p.settings.keepalive.configureDialer(d)
	if p.settings.bind.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: p.settings.bind.AsSlice()}
	}
	p.settings.source.ConfigureDialer(d) // origsrc.go: wins over the bind address
	return d
}

type countersKey struct{}

// dialedKey carries a *net.Conn that the dialer sets to the connection it made.
type dialedKey struct{}

// dialValues is a dial's context: ctx's cancellation and deadline, with the values the
// dialer reads (countersKey, dialedKey; nil: not set) and none of ctx's. The standard
// library reads a dial context's values on goroutines that may outlive the dial (a
// dual-stack dial's fallback racer, the resolver's lookup), and the proxy reuses a
// finished request's memory, its context included. For the same reason it keeps ctx's
// AfterFunc visible: the dial's own deadline context then watches a request's
// reqctx.Ctx through a registration that ends with the dial, where context.WithValue's
// wrapper made the standard library start a goroutine that could look at the request's
// context after the request ended.
type dialValues struct {
	context.Context
	counters Counters
	dialed   *net.Conn
}

func withDialValues(ctx context.Context, cb Counters, dialed *net.Conn) context.Context {
	return &dialValues{Context: ctx, counters: cb, dialed: dialed}
}

func (d *dialValues) Value(key any) any {
	switch key.(type) {
	case countersKey:
		if d.counters != nil {
			return d.counters
		}
	case dialedKey:
		if d.dialed != nil {
			return d.dialed
		}
	}
	return nil
}

// AfterFunc is ctx's own when it has one (a reqctx.Ctx), else context.AfterFunc's.
func (d *dialValues) AfterFunc(f func()) (stop func() bool) {
	if a, ok := d.Context.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(d.Context, f)
}

// dialer dials with the connect timeout, reports the outcome to the Counters found in the
// request context, and wraps the connection so that its close is reported too.
func (p *Pool) dialer(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		cb, _ := ctx.Value(countersKey{}).(Counters)
		addr = p.settings.source.Target(addr) // origsrc.go: loopback upstreams at the pod's address
		dd := d
		if p.source.IsValid() && !p.settings.bind.IsValid() {
			if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().IsLoopback() && ap.Addr().Is4() == p.source.Is4() {
				local := *d
				local.LocalAddr = &net.TCPAddr{IP: p.source.AsSlice()}
				dd = &local
			}
		}
		c, err := dd.DialContext(ctx, network, addr)
		if err != nil {
			if cb != nil {
				cb.ConnectFailed()
			}
			return nil, connectError(addr, err)
		}
		c = sockio.Wrap(c)                               // reads and writes as raw socket calls, under TLS too
		if c, err = p.secure(ctx, c, addr); err != nil { // tls.go: the cluster's transport socket
			if cb != nil {
				cb.ConnectFailed()
			}
			return nil, err
		}
		if slot, ok := ctx.Value(dialedKey{}).(*net.Conn); ok {
			*slot = c // h2.go: the connection under an HTTP/2 client connection, for its local address
		}
		if p.log.Enabled(ctx, slog.LevelDebug) {
			p.log.Debug("new upstream connection", "addr", addr, "local", c.LocalAddr().String())
		}
		if cb == nil {
			return c, nil
		}
		cb.ConnOpened()
		return &countedConn{Conn: c, cb: cb}, nil
	}
}

// countedConn reports its close once.
type countedConn struct {
	net.Conn
	cb     Counters
	closed atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.cb.ConnClosed()
	}
	return c.Conn.Close()
}

// SyscallConn passes on to the TCP connection (the idle peek, socket options).
func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// useH2 says whether req goes over h2c: by cluster protocol, or for Downstream clusters
// by the downstream request's protocol.
func (p *Pool) useH2(req *http.Request) bool {
	return p.h1 == nil || (p.h2 != nil && req.ProtoMajor == 2)
}

// attempt records what httptrace saw of one RoundTrip. Written from transport goroutines.
type attempt struct {
	gotConn atomic.Bool
	reused  atomic.Bool
	wrote   atomic.Bool // request headers were written to the connection
}

// RoundTrip sends req to addr ("ip:port") and returns the response with its headers; the
// caller must close the response body. It sets req.URL's scheme and host (the request's
// Host header is req.Host). Connection events feed cb, and obs learns the connection
// used; either may be nil.
//
// Errors: *ConnectError when no connection could be made, *ResetError when the connection
// or stream failed before response headers arrived, or the request context's error when it
// was cancelled or timed out.
func (p *Pool) RoundTrip(req *http.Request, addr string, cb Counters, obs ConnObserver) (*http.Response, error) {
	return p.roundTrip(req, addr, cb, obs, false)
}

// RoundTripNew is RoundTrip on a new connection (never an idle one): the retry of a
// request that failed on a reused connection. Over HTTP/2 it is RoundTrip.
func (p *Pool) RoundTripNew(req *http.Request, addr string, cb Counters, obs ConnObserver) (*http.Response, error) {
	return p.roundTrip(req, addr, cb, obs, true)
}

func (p *Pool) roundTrip(req *http.Request, addr string, cb Counters, obs ConnObserver, fresh bool) (*http.Response, error) {
	req.URL.Scheme = "http"
	req.URL.Host = addr
	if !p.useH2(req) {
		p.inflight.Add(1)
		resp, err := p.h1.roundTrip(req, addr, cb, obs, fresh)
		if err != nil {
			p.done()
			return nil, err
		}
		if b, ok := resp.Body.(*h1Body); ok {
			b.p = p // its Close ends the in-flight accounting, as a trackedBody's does
			return resp, nil
		}
		if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
			resp.Body = &trackedRW{trackedBody: trackedBody{ReadCloser: rw, p: p}, w: rw}
			return resp, nil
		}
		resp.Body = &trackedBody{ReadCloser: resp.Body, p: p}
		return resp, nil
	}
	p.inflight.Add(1) // HTTP/2: the pool's own connections (h2.go)
	fillRequestHeader(obs)
	resp, err := p.h2l.roundTrip(req, addr, cb, obs)
	if err != nil {
		p.done()
		return nil, err
	}
	return resp, nil // its body is a streamBody, whose Close ends the in-flight accounting
}

// KeepsNoRequest says whether, once a response's body has been read to its end and closed,
// nothing of the pool still uses a request sent without a body (its header map, URL,
// context): true for the pool's own HTTP/1.1 and HTTP/2 clients, which write such a
// request before RoundTrip returns and stop watching its context when the body closes;
// false with net/http's HTTP/2 ClientConn (LUCID_HTTP2_CLIENT=nethttp), whose goroutines
// may outlive the body. forward reuses a request's memory only when it is true.
func (p *Pool) KeepsNoRequest() bool { return p.h2l == nil || p.h2l.native }

// done marks the end of one RoundTrip; a retired pool closes its idle connections once
// nothing is in flight.
func (p *Pool) done() {
	if p.inflight.Add(-1) == 0 && p.retired.Load() {
		p.closeIdle()
	}
}

func (p *Pool) retire() {
	p.retired.Store(true)
	p.closeIdle()
	p.eachSource(func(sp *Pool) { sp.retire() })
}

func (p *Pool) closeIdle() {
	p.eachSource(func(sp *Pool) { sp.closeIdle() })
	if p.h1 != nil {
		p.h1.closeIdle(false)
	}
	if p.h2 != nil {
		p.h2.CloseIdleConnections()
	}
	if p.h2l != nil {
		p.h2l.closeIdle()
	}
}

// Name is the cluster the pool serves.
func (p *Pool) Name() string { return p.name }

// trackedBody ends the RoundTrip's in-flight accounting when the body is closed.
type trackedBody struct {
	io.ReadCloser
	p    *Pool
	once sync.Once
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.p.done)
	return err
}

// trackedRW is a trackedBody that is also writable: the upgraded connection of a 101
// response, as net/http returns it.
type trackedRW struct {
	trackedBody
	w io.Writer
}

func (b *trackedRW) Write(p []byte) (int, error) { return b.w.Write(p) }
