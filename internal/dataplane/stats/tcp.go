package stats

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Istio's TCP metrics, for opaque TCP connections (tcp_proxy): istio_tcp_connections_opened_total,
// istio_tcp_connections_closed_total, istio_tcp_sent_bytes_total (upstream → downstream)
// and istio_tcp_received_bytes_total (downstream → upstream). Their labels are the HTTP
// metrics' without response_code and grpc_response_status; request_protocol is "tcp".
//
// Bytes are counted as they move (Istio reports them periodically while a connection
// lives), so a long-lived connection's traffic shows before it closes. All four series of
// a connection carry the labels as they were when it opened; a connection refused before
// it reached an upstream (UF, UH, UO, NR) opens and closes at once with its flag.

// TCPLabelNames are the labels of Istio's TCP metrics, in Istio's order.
var TCPLabelNames = func() []string {
	var out []string
	for _, n := range LabelNames {
		if n != "response_code" && n != "grpc_response_status" {
			out = append(out, n)
		}
	}
	return out
}()

// tcpMetrics are the TCP metric vectors; created on first use so that a sidecar without
// TCP traffic exports none.
type tcpMetrics struct {
	once                     sync.Once
	opened, closed           *prometheus.CounterVec
	sentBytes, receivedBytes *prometheus.CounterVec
}

func (s *Stats) tcp() *tcpMetrics {
	t := &s.tcpm
	t.once.Do(func() {
		mk := func(name, help string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, TCPLabelNames)
		}
		t.opened = mk("istio_tcp_connections_opened_total", "TCP connections opened by this proxy.")
		t.closed = mk("istio_tcp_connections_closed_total", "TCP connections closed by this proxy.")
		t.sentBytes = mk("istio_tcp_sent_bytes_total", "Bytes sent to the downstream on TCP connections.")
		t.receivedBytes = mk("istio_tcp_received_bytes_total", "Bytes received from the downstream on TCP connections.")
		s.reg.MustRegister(t.opened, t.closed, t.sentBytes, t.receivedBytes)
	})
	return t
}

// TCPConn is the metrics of one opaque TCP connection. Its methods are safe for
// concurrent use (the two directions of a pipe count on different goroutines).
type TCPConn struct {
	closed, sent, received prometheus.Counter
	once                   sync.Once
}

// TCPOpened counts one TCP connection opened, with labels from info (direction, peers,
// destination service, flags so far), and returns the connection's counters.
func (s *Stats) TCPOpened(info *streaminfo.Info) *TCPConn {
	var k labelKey
	s.fill(&k, info)
	vals := make([]string, 0, len(TCPLabelNames))
	for i, v := range k {
		switch LabelNames[i] {
		case "response_code", "grpc_response_status":
			continue
		case "request_protocol":
			v = "tcp"
		}
		vals = append(vals, v)
	}
	t := s.tcp()
	t.opened.WithLabelValues(vals...).Inc()
	return &TCPConn{
		closed:   t.closed.WithLabelValues(vals...),
		sent:     t.sentBytes.WithLabelValues(vals...),
		received: t.receivedBytes.WithLabelValues(vals...),
	}
}

// AddSent counts bytes sent to the downstream.
func (c *TCPConn) AddSent(n int64) {
	if n > 0 {
		c.sent.Add(float64(n))
	}
}

// AddReceived counts bytes received from the downstream.
func (c *TCPConn) AddReceived(n int64) {
	if n > 0 {
		c.received.Add(float64(n))
	}
}

// Close counts the connection closed; later calls do nothing.
func (c *TCPConn) Close() { c.once.Do(c.closed.Inc) }
