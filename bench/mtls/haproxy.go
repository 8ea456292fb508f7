package main

import (
	"bufio"
	"crypto"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// The HAProxy pair: a client-side HAProxy (where the load goes) forwarding to a
// server-side HAProxy in front of the upstream, each one process with one thread. With
// TLS, the client side originates TLS with a client certificate and verifies the server's
// (chain and name); the server side terminates it with `verify required`. Both have
// session resumption off: no session cache (tune.ssl.cachesize 0), no tickets on the
// server, no reuse of a session on the client (no-ssl-reuse), so every new connection is
// a full handshake, as Lucid's are (its client keeps no session cache). Their
// certificates are ECDSA P-256 like the sidecars', signed by the same mesh CA, and
// AES-128-GCM comes first, the suite Go picks (OpenSSL's default prefers AES-256).

// haproxyCerts writes the two HAProxy certificates (certificate, key) signed by the mesh
// CA kept in the state directory, and the roots.
func (e *env) haproxyCerts() error {
	dir := filepath.Join(e.state, "istio-ca")
	read := func(name string) []byte {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return b
	}
	a, err := pki.LoadAuthority(pki.Files{CACert: read(pki.FileCACert), CAKey: read(pki.FileCAKey),
		CertChain: read(pki.FileCertChain), RootCert: read(pki.FileRootCert)})
	if err != nil {
		return fmt.Errorf("the mesh CA in %s: %w", dir, err)
	}
	for _, c := range []struct {
		file, sa string
		usage    pki.Usage
	}{{"haproxy-server.pem", "web-sa", pki.ServerAuth}, {"haproxy-client.pem", "client-sa", pki.ClientAuth}} {
		id, _ := url.Parse("spiffe://cluster.local/ns/default/sa/" + c.sa)
		cert, err := a.Issue(pki.Template{DNSNames: []string{webHost}, URIs: []*url.URL{id}, Usage: c.usage, Validity: 24 * time.Hour}, pki.ECDSAP256)
		if err != nil {
			return err
		}
		key, err := pki.EncodeKey(cert.PrivateKey.(crypto.Signer))
		if err != nil {
			return err
		}
		var pemFile []byte
		for _, der := range cert.Certificate {
			pemFile = append(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		if err := os.WriteFile(filepath.Join(e.state, c.file), append(pemFile, key...), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// haproxyGlobal is the part both HAProxy configurations share.
const haproxyGlobal = `global
  nbthread 1
  maxconn 4096
  tune.ssl.cachesize 0
  ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
  ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
  stats socket %s level admin
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
`

// startHAProxy starts the server side, then the client side, and waits until a request
// gets through.
func (e *env) startHAProxy(v variant, tls bool) (*pair, error) {
	p := &pair{env: e}
	sock := filepath.Join(e.work, "haproxy-server.sock")
	_ = os.Remove(sock)
	bind := e.addr(haproxyServerHost, 8443)
	if tls {
		bind += " ssl crt " + filepath.Join(e.state, "haproxy-server.pem") + " ca-file " + filepath.Join(e.state, "root-cert.pem") +
			" verify required no-tls-tickets alpn h2,http/1.1"
	}
	server := fmt.Sprintf(haproxyGlobal, sock) + fmt.Sprintf(`frontend mesh_in
  bind %s
  default_backend app
backend app
  http-reuse always
  server app %s
`, bind, e.addr(upstreamHost, 8080))
	target := e.addr(haproxyServerHost, 8443)
	switch {
	case tls:
		target += " ssl crt " + filepath.Join(e.state, "haproxy-client.pem") + " ca-file " + filepath.Join(e.state, "root-cert.pem") +
			" verify required verifyhost " + webHost + " sni str(" + webHost + ") no-ssl-reuse"
		if v.h2 {
			target += " alpn h2"
		} else {
			target += " alpn http/1.1"
		}
	case v.h2:
		target += " proto h2"
	}
	reuse := "always"
	if v.newConn {
		reuse = "never" // a connection to the server side belongs to its client's, closed with it
	}
	client := fmt.Sprintf(haproxyGlobal, filepath.Join(e.work, "haproxy-client.sock")) + fmt.Sprintf(`frontend out
  bind %s
  default_backend mesh
backend mesh
  http-reuse %s
  server web %s
`, e.addr(haproxyClientHost, 8080), reuse, target)
	var err error
	for _, h := range []struct {
		name, cfg string
		pid       *int
	}{{"haproxy-server", server, &p.server}, {"haproxy-client", client, &p.client}} {
		f := filepath.Join(e.work, h.name+".cfg")
		if err := os.WriteFile(f, []byte(h.cfg), 0o600); err != nil {
			return nil, p.fail(err)
		}
		if *h.pid, err = p.start(h.name, nil, nil, "1", "haproxy", "-db", "-f", f); err != nil {
			return nil, p.fail(err)
		}
	}
	p.addr = e.addr(haproxyClientHost, 8080)
	p.head = "GET / HTTP/1.1\r\nHost: " + webHost + ":8080\r\n"
	p.serverConns = func() (int64, error) { return haproxyInfo(sock, "CumConns") }
	return p, p.ready()
}

// haproxyInfo reads one counter of `show info` from a stats socket.
func haproxyInfo(sock, name string) (int64, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show info\n")); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ": "); ok && k == name {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("haproxy %s: no %s in show info", sock, name)
}
