package selfcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAuthorityRoundTrip(t *testing.T) {
	now := time.Now()
	ca, err := NewAuthority("lucid-webhook-ca", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadAuthority(ca.CertPEM(), ca.KeyPEM())
	if err != nil {
		t.Fatalf("LoadAuthority of a fresh CA: %v", err)
	}
	other, _ := NewAuthority("other", time.Hour, now)
	tests := []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"garbage cert", []byte("nope"), ca.KeyPEM(), "no PEM CERTIFICATE block"},
		{"garbage key", ca.CertPEM(), []byte("nope"), "ca-key.pem: no PEM block"},
		{"key of another CA", ca.CertPEM(), other.KeyPEM(), "does not belong to ca-cert.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadAuthority(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	c, err := again.Issue([]string{"lucid-discovery.istio-system.svc"}, []net.IP{net.ParseIP("127.0.99.1")}, 10*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotAfter.Equal(ca.NotAfter()) {
		t.Errorf("leaf expires %v, want capped at the CA's %v", c.Leaf.NotAfter, ca.NotAfter())
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	for _, name := range []string{"lucid-discovery.istio-system.svc", "127.0.99.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := ca.Issue(nil, nil, time.Hour, now); err == nil {
		t.Error("Issue without names succeeded")
	}
}

func TestRotatorOptionsRejected(t *testing.T) {
	ca, _ := NewAuthority("ca", time.Hour, time.Now())
	_, err := NewRotator(ca, RotatorOptions{DNSNames: []string{"x"}, Validity: time.Minute, RenewBefore: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "shorter than the validity") {
		t.Fatalf("err = %v", err)
	}
}

// TestRotationKeepsClients: a client with a kept-alive connection keeps working across
// rotations, and new connections are served the new certificate.
func TestRotationKeepsClients(t *testing.T) {
	ca, err := NewAuthority("ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRotator(ca, RotatorOptions{IPs: []net.IP{net.ParseIP("127.0.99.2")}, Validity: 3 * time.Second, RenewBefore: 2500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ln, err := net.Listen("tcp", "127.0.99.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() {
		_ = srv.Serve(tls.NewListener(ln, &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}))
	}()
	defer srv.Close()
	url := "https://" + ln.Addr().String()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() *tls.ConnectionState {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET across rotation: %v", err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
		return resp.TLS
	}
	first := get().PeerCertificates[0].SerialNumber
	testutil.EventuallyWhy(t, 10*time.Second, "two rotations", func() (bool, string) {
		get() // the kept-alive connection still works
		n := r.Rotations()
		return n >= 2, fmt.Sprintf("%d so far", n)
	})
	tr.CloseIdleConnections()
	got := get().PeerCertificates[0].SerialNumber
	if got.Cmp(first) == 0 {
		t.Fatal("a new connection still got the first certificate after rotations")
	}
	if got.Cmp(r.Current().Leaf.SerialNumber) != 0 && r.Rotations() < 3 {
		t.Fatal("a new connection did not get the current certificate")
	}
}
