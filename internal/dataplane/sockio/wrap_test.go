package sockio

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// TLS over a wrapped connection on both sides: the handshake and 2 MiB each way go
// through the raw calls, and arrive whole.
func TestWrapUnderTLS(t *testing.T) {
	c, _, peer := pair(t)
	ca := testutil.CA(t, "sockio test")
	leaf := testutil.Issue(t, ca, false, "server.test")
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	server := tls.Server(Wrap(peer), &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS12})
	client := tls.Client(Wrap(c), &tls.Config{RootCAs: roots, ServerName: "server.test", MinVersion: tls.VersionTLS12})
	up, down := random(t, 2<<20), random(t, 2<<20)
	serverGot := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(up))
		if _, err := io.ReadFull(server, b); err != nil {
			serverGot <- nil
			return
		}
		serverGot <- b
		_, _ = server.Write(down)
	}()
	if _, err := client.Write(up); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(down))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-serverGot, up) || !bytes.Equal(got, down) {
		t.Fatal("bytes differ after a round trip through TLS over wrapped connections")
	}
}

// A wrapped connection keeps what the data plane asks of a TCP connection, and shares one
// socket with every wrapper that asks for it.
func TestWrapKeepsTheSocket(t *testing.T) {
	c, _, peer := pair(t)
	w := Wrap(c)
	if w == net.Conn(c) {
		t.Fatal("Wrap returned the TCP connection itself")
	}
	s := Open(w)
	if s == nil || s != w.(Socketed).Socket() {
		t.Fatal("Open(wrapped) does not share the wrapper's socket")
	}
	if _, ok := w.(syscall.Conn); !ok {
		t.Error("the wrapped connection has no SyscallConn")
	}
	if nc, ok := w.(interface{ NetConn() net.Conn }); !ok || nc.NetConn() != net.Conn(c) {
		t.Error("NetConn does not return the TCP connection")
	}
	// CloseWrite half-closes: the peer reads the end of the stream, and can still answer.
	if err := w.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(peer); err != nil || len(b) != 0 {
		t.Fatalf("peer read %q, %v after CloseWrite; want the end of the stream", b, err)
	}
	if _, err := peer.Write([]byte("still open")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	if _, err := io.ReadFull(w, b); err != nil || string(b) != "still open" {
		t.Fatalf("read after CloseWrite = %q, %v", b, err)
	}
	tc := tls.Client(w, &tls.Config{MinVersion: tls.VersionTLS12})
	if Wrap(tc) != net.Conn(tc) || Open(tc) != nil {
		t.Error("a TLS connection got a raw path of its own")
	}
}
