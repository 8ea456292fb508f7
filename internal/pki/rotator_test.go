package pki

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRotatorOptionsRejected(t *testing.T) {
	a := newRoot(t)
	issue := func(now time.Time) (*tls.Certificate, error) {
		return a.Issue(Template{DNSNames: []string{"x"}, Validity: time.Minute, Now: now}, ECDSAP256)
	}
	if _, err := NewRotator(RotatorOptions{Issue: issue, RenewBefore: -time.Second}); err == nil || !strings.Contains(err.Error(), "negative renew-before") {
		t.Errorf("negative renew-before: %v", err)
	}
	// A renew-before over the lifetime (a certificate capped by an expiring authority)
	// renews halfway instead of continuously.
	r, err := NewRotator(RotatorOptions{Issue: issue, RenewBefore: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.next(); d < 25*time.Second || d > 30*time.Second {
		t.Errorf("renewal in %s, want about half of the 1-minute lifetime", d)
	}
	if _, err := NewRotator(RotatorOptions{}); err == nil {
		t.Error("a rotator without an issuer")
	}
	failing := func(time.Time) (*tls.Certificate, error) { return nil, errors.New("boom") }
	if _, err := NewRotator(RotatorOptions{Issue: failing, Name: "test certificate"}); err == nil || !strings.Contains(err.Error(), "issue the test certificate: boom") {
		t.Errorf("failing first issue: %v", err)
	}
}

// TestRotatorKeepsServing: a TLS server reading the rotator through GetCertificate
// serves kept-alive and new connections across several renewals without one failure,
// and new connections get the newest certificate; a failed renewal keeps the current one.
func TestRotatorKeepsServing(t *testing.T) {
	a := newRoot(t)
	var fail atomic.Bool
	r, err := NewRotator(RotatorOptions{
		Issue: func(now time.Time) (*tls.Certificate, error) {
			if fail.Load() {
				return nil, errors.New("CA unavailable")
			}
			return a.Issue(Template{IPs: []net.IP{net.ParseIP("127.0.117.2")}, Validity: 3 * time.Second, Now: now}, ECDSAP256)
		},
		RenewBefore: 1500 * time.Millisecond, // x509 times are whole seconds: the lifetime is 2 to 3 s
		RetryAfter:  50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	ln, err := net.Listen("tcp", "127.0.117.2:0")
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
	cfg := &tls.Config{RootCAs: a.RootPool(), MinVersion: tls.VersionTLS12}
	kept := &http.Transport{TLSClientConfig: cfg}
	fresh := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer kept.CloseIdleConnections()
	get := func(tr *http.Transport) *tls.ConnectionState {
		t.Helper()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			t.Fatalf("GET across rotations: %v", err)
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
		return resp.TLS
	}
	deadline := time.Now().Add(15 * time.Second)
	served := map[string]bool{} // serials new connections were served
	for r.Rotations() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d renewals in 15 s, want 3", r.Rotations())
		}
		get(kept)
		served[get(fresh).PeerCertificates[0].SerialNumber.String()] = true
		time.Sleep(20 * time.Millisecond)
	}
	if len(served) < 2 {
		t.Errorf("new connections saw %d certificate(s) across %d renewals, want renewed ones", len(served), r.Rotations())
	}

	fail.Store(true)
	before := r.Current()
	time.Sleep(1600 * time.Millisecond) // past the renewal time: attempts fail
	if r.Current() != before {
		t.Error("a failed renewal replaced the certificate")
	}
	get(kept) // still served
}
