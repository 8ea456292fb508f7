package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// checkGateway sends the README's requests through the example's ingress gateway: plain
// HTTP on 127.0.0.1:8080, and HTTPS on :8443 with the certificate `lucid up` generated,
// over HTTP/2 and HTTP/1.1 (ALPN).
func checkGateway(t *testing.T, caFile string) {
	t.Helper()
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	// The gateway starts last (after the apps): wait for it.
	status, body, err := fetch(plain, "http://127.0.0.1:8080/productpage")
	for deadline := time.Now().Add(30 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		status, body, err = fetch(plain, "http://127.0.0.1:8080/productpage")
	}
	if err != nil || status != http.StatusOK || !strings.Contains(body, `"service": "productpage"`) {
		t.Errorf("GET http://127.0.0.1:8080/productpage through the gateway: %d %v\n%s", status, err, body)
	}
	// A path no gateway route matches: Envoy's 404 NR.
	if status, _, err := fetch(plain, "http://127.0.0.1:8080/nothing-here"); err != nil || status != http.StatusNotFound {
		t.Errorf("GET /nothing-here through the gateway: %d %v, want 404 (no route)", status, err)
	}

	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("the gateway's CA: %v (lucid up should have generated it)", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", caFile)
	}
	for _, proto := range []string{"h2", "http/1.1"} {
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: true, ForceAttemptHTTP2: proto == "h2",
			TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{proto}, MinVersion: tls.VersionTLS12}}
		c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		resp, err := c.Get("https://127.0.0.1:8443/productpage")
		if err != nil {
			t.Errorf("HTTPS through the gateway (%s): %v", proto, err)
			continue
		}
		_ = resp.Body.Close()
		want := map[string]int{"h2": 2, "http/1.1": 1}[proto]
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != want {
			t.Errorf("HTTPS through the gateway (%s): %s over %s, want 200 over HTTP/%d", proto, resp.Status, resp.Proto, want)
		}
	}
}
