package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// A connection captured to virtualInbound is told TLS from plaintext per connection on a
// port whose PeerAuthentication asks for it: under PERMISSIVE a ClientHello picks the
// mutual-TLS chain and plaintext the plaintext one, with the peeked bytes replayed; under
// STRICT plaintext is refused (closed and counted), not passed through to the app.
func TestCapturedInboundChain(t *testing.T) {
	mtlsChain := resource.FilterChain{Match: resource.FilterChainMatch{DestinationPort: 9080, TransportProtocol: "tls"},
		TLS: &resource.DownstreamTLS{CertificateSDS: "default", ValidationSDS: "ROOTCA", RequireClientCertificate: true}, MTLSMode: "STRICT"}
	plainChain := resource.FilterChain{Match: resource.FilterChainMatch{DestinationPort: 9080, TransportProtocol: "raw_buffer"}}
	passthrough := &resource.FilterChain{}
	listener := func(chains ...resource.FilterChain) *resource.Listener {
		return &resource.Listener{Name: "virtualInbound", Direction: resource.Inbound, FilterChains: chains, DefaultChain: passthrough}
	}
	p := New(Options{ListenerFiltersTimeout: 2 * time.Second})
	// pick runs send on the client side of a pipe and returns what the server side picked.
	pick := func(l *resource.Listener, send func(net.Conn)) (net.Conn, *resource.FilterChain, bool) {
		client, server := net.Pipe()
		defer client.Close()
		go send(client)
		conn, fc, _, ok := p.capturedInboundChain(l, server, 9080)
		return conn, fc, ok
	}
	hello := func(c net.Conn) {
		_ = tls.Client(c, &tls.Config{ServerName: "x", InsecureSkipVerify: true}).Handshake()
	} // only the ClientHello matters
	plain := func(c net.Conn) { _, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") }

	permissive := listener(mtlsChain, plainChain)
	if _, fc, ok := pick(permissive, hello); !ok || fc != &permissive.FilterChains[0] {
		t.Errorf("PERMISSIVE, a ClientHello: chain %+v ok %v, want the mutual-TLS chain", fc, ok)
	}
	conn, fc, ok := pick(permissive, plain)
	if !ok || fc != &permissive.FilterChains[1] {
		t.Fatalf("PERMISSIVE, plaintext: chain %+v ok %v, want the plaintext chain", fc, ok)
	}
	b := make([]byte, 3)
	if _, err := io.ReadFull(conn, b); err != nil || string(b) != "GET" {
		t.Errorf("the peeked bytes are not replayed: %q %v", b, err)
	}

	strict := listener(mtlsChain)
	if _, fc, ok := pick(strict, hello); !ok || fc != &strict.FilterChains[0] {
		t.Errorf("STRICT, a ClientHello: chain %+v ok %v, want the mutual-TLS chain", fc, ok)
	}
	if _, fc, ok := pick(strict, plain); ok || fc != nil {
		t.Errorf("STRICT, plaintext: chain %+v ok %v, want refused (not the passthrough to the app)", fc, ok)
	}
	if n := p.mtlsRefused.n.Load(); n != 1 {
		t.Errorf("mtls.plaintext_refused = %d, want 1", n)
	}
}
