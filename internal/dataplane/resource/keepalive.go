package resource

import "time"

// TCPKeepalive is config.core.v3.TcpKeepalive, as set on a cluster's
// upstream_connection_options.tcp_keepalive. Zero fields are unset: Envoy then uses the
// OS default, Lucid its own default (internal/dataplane/sockopt: 10 s, 5 s, 3 probes).
type TCPKeepalive struct {
	Probes   uint32        // keepalive_probes
	Time     time.Duration // keepalive_time (whole seconds)
	Interval time.Duration // keepalive_interval (whole seconds)
}

// HTTP2Keepalive is config.core.v3.KeepaliveSettings, as set on
// http2_protocol_options.connection_keepalive: a PING after Interval, the connection closed
// when no answer (no frame at all) arrives within Timeout.
type HTTP2Keepalive struct {
	Interval time.Duration // interval
	Timeout  time.Duration // timeout
}
