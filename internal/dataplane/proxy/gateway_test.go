package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// Router listeners over real loopback sockets and real TLS: SNI selection, ALPN, MUTUAL,
// passthrough, TCP servers, require_tls and certificate errors. Addresses: 127.0.97.0/24.

var alpnH2H1 = []string{"h2", "http/1.1"}

func httpsChain(name string, names []string, tlsCtx *resource.DownstreamTLS, rds string) resource.FilterChain {
	return resource.FilterChain{Name: name, Match: resource.FilterChainMatch{ServerNames: names}, TLS: tlsCtx, HTTP: gatewayHCM(rds)}
}

func simpleTLS(cp resource.CertificatePair) *resource.DownstreamTLS {
	return &resource.DownstreamTLS{Certificates: []resource.CertificatePair{cp}, ALPN: alpnH2H1}
}

// sniSnapshot: four HTTPS servers on 0.0.0.0_8443: a.example.com, *.example.com,
// *.deep.example.com and one without server names, each with its own certificate and
// backend on 127.0.97.2.
func sniSnapshot(t *testing.T, ca *testCA) *resource.Snapshot {
	t.Helper()
	chains := []resource.FilterChain{
		httpsChain("https.443.a.gw.istio-system", []string{"a.example.com"}, simpleTLS(ca.files(t, "a", "a.example.com")), "https.443.a.gw.istio-system"),
		httpsChain("https.443.wild.gw.istio-system", []string{"*.example.com"}, simpleTLS(ca.files(t, "wild", "*.example.com")), "https.443.wild.gw.istio-system"),
		httpsChain("https.443.deep.gw.istio-system", []string{"*.deep.example.com"}, simpleTLS(ca.files(t, "deep", "*.deep.example.com", "*.x.deep.example.com")), "https.443.deep.gw.istio-system"),
		httpsChain("https.443.any.gw.istio-system", nil, simpleTLS(ca.files(t, "any", "fallback.test", "other.test")), "https.443.any.gw.istio-system"),
	}
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{"0.0.0.0_8443": gatewayListener(8443, chains...)},
		Routes: map[string]*resource.RouteConfig{
			"https.443.a.gw.istio-system":    vhostRoutes("https.443.a.gw.istio-system", [2]string{"a.example.com", "a"}),
			"https.443.wild.gw.istio-system": vhostRoutes("https.443.wild.gw.istio-system", [2]string{"*.example.com", "wild"}),
			"https.443.deep.gw.istio-system": vhostRoutes("https.443.deep.gw.istio-system", [2]string{"*.deep.example.com", "deep"}),
			"https.443.any.gw.istio-system":  vhostRoutes("https.443.any.gw.istio-system", [2]string{"*", "any"}),
		},
		Clusters: map[string]*resource.Cluster{}, Endpoints: map[string]*resource.Endpoints{},
	}
	for i, name := range []string{"a", "wild", "deep", "any"} {
		s.Clusters[name] = staticCluster(name, fmt.Sprintf("127.0.97.2:%d", 8080+i))
	}
	return s
}

func startSNIBackends(t *testing.T) {
	t.Helper()
	for i, name := range []string{"a", "wild", "deep", "any"} {
		echoBackend(t, fmt.Sprintf("127.0.97.2:%d", 8080+i), name)
	}
}

func TestGatewaySNISelectionAndALPN(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	startSNIBackends(t)
	p := newProxy(t, "127.0.97.1")
	if err := p.Apply(sniSnapshot(t, ca)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sni, wantCert, wantBody, wantProto string
		h2                                 bool
	}{
		{"a.example.com", "a.example.com", "a xfp=https /x", "HTTP/2.0", true},
		{"a.example.com", "a.example.com", "a xfp=https /x", "HTTP/1.1", false},
		{"b.example.com", "*.example.com", "wild xfp=https /x", "HTTP/2.0", true},
		{"x.deep.example.com", "*.deep.example.com", "deep xfp=https /x", "HTTP/2.0", true},    // longest wildcard wins
		{"y.x.deep.example.com", "*.deep.example.com", "deep xfp=https /x", "HTTP/1.1", false}, // a wildcard spans labels
		{"other.test", "fallback.test", "any xfp=https /x", "HTTP/2.0", true},                  // no server_names: the catch-all chain
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/h2=%v", tt.sni, tt.h2), func(t *testing.T) {
			c := httpsClient("127.0.97.1:8443", tt.sni, ca.pool(), tt.h2)
			defer c.CloseIdleConnections()
			a := get(t, c, "https://"+tt.sni+"/x")
			if a.code != 200 || a.body != tt.wantBody {
				t.Errorf("GET = %d %q, want 200 %q", a.code, a.body, tt.wantBody)
			}
			if got := a.tls.PeerCertificates[0].Subject.CommonName; got != tt.wantCert {
				t.Errorf("certificate = %q, want %q", got, tt.wantCert)
			}
			if a.proto != tt.wantProto {
				t.Errorf("protocol = %s, want %s (ALPN %q)", a.proto, tt.wantProto, a.tls.NegotiatedProtocol)
			}
		})
	}
}

func TestGatewayRefusesTLS11(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	startSNIBackends(t)
	p := newProxy(t, "127.0.97.3")
	if err := p.Apply(sniSnapshot(t, ca)); err != nil {
		t.Fatal(err)
	}
	_, err := tls.Dial("tcp", "127.0.97.3:8443", &tls.Config{ServerName: "a.example.com", RootCAs: ca.pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 client completed the handshake; want it refused (minimum TLS 1.2)")
	}
	waitStat(t, p, "listener.0.0.0.0_8443.ssl.connection_error", 1)
	// TLS 1.2 is accepted.
	c, err := tls.Dial("tcp", "127.0.97.3:8443", &tls.Config{ServerName: "a.example.com", RootCAs: ca.pool(), MaxVersion: tls.VersionTLS12, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	_ = c.Close()
}

// waitStat polls the proxy's TLS counters until name reaches want.
func waitStat(t *testing.T, p *Proxy, name string, want uint64) {
	t.Helper()
	testutil.EventuallyWhy(t, 5*time.Second, fmt.Sprintf("%s at %d", name, want), func() (bool, string) {
		var got uint64
		p.EachTLSStat(func(n string, v uint64) {
			if n == name {
				got = v
			}
		})
		return got >= want, fmt.Sprintf("it is %d", got)
	})
}

func TestGatewayMutualTLS(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	clientCA := newCA(t, "client CA")
	otherCA := newCA(t, "untrusted CA")
	echoBackend(t, "127.0.97.5:8080", "mtls")
	tc := simpleTLS(ca.files(t, "mtls", "mtls.example.com"))
	tc.TrustedCA = resource.DataSource{Inline: clientCA.pem}
	tc.RequireClientCertificate = true
	tc.SANs = []resource.SANMatcher{{Type: resource.SANDNS, Matcher: resource.StringMatcher{Kind: resource.MatchSuffix, Value: ".good.client"}}}
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{"0.0.0.0_8443": gatewayListener(8443, httpsChain("https.443.mtls.gw.istio-system", []string{"mtls.example.com"}, tc, "https.443.mtls"))},
		Routes:    map[string]*resource.RouteConfig{"https.443.mtls": vhostRoutes("https.443.mtls", [2]string{"mtls.example.com", "mtls"})},
		Clusters:  map[string]*resource.Cluster{"mtls": staticCluster("mtls", "127.0.97.5:8080")},
		Endpoints: map[string]*resource.Endpoints{},
	}
	p := newProxy(t, "127.0.97.4")
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		certs    []tls.Certificate
		wantStat string // "" → accepted
	}{
		{"trusted client", []tls.Certificate{clientCA.clientCert(t, "a.good.client")}, ""},
		{"no certificate", nil, "listener.0.0.0.0_8443.ssl.fail_verify_no_cert"},
		{"untrusted CA", []tls.Certificate{otherCA.clientCert(t, "a.good.client")}, "listener.0.0.0.0_8443.ssl.fail_verify_error"},
		{"SAN not allowed", []tls.Certificate{clientCA.clientCert(t, "a.bad.client")}, "listener.0.0.0.0_8443.ssl.fail_verify_san"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := httpsClient("127.0.97.4:8443", "mtls.example.com", ca.pool(), true, tt.certs...)
			defer c.CloseIdleConnections()
			resp, err := c.Get("https://mtls.example.com/m")
			if tt.wantStat == "" {
				if err != nil {
					t.Fatalf("trusted client refused: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "mtls xfp=https /m" {
					t.Fatalf("body %q", b)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("client accepted (%d), want the handshake to fail", resp.StatusCode)
			}
			waitStat(t, p, tt.wantStat, 1)
		})
	}
	waitStat(t, p, "listener.0.0.0.0_8443.ssl.connection_error", 3)
}

// tcpEcho is a TCP server that writes back what it reads, prefixed with its name.
func tcpEcho(t *testing.T, addr, name string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256)
				n, _ := c.Read(buf)
				_, _ = io.WriteString(c, name+":"+string(buf[:n]))
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
}

func TestGatewayPassthroughBySNI(t *testing.T) {
	upCA := newCA(t, "upstream CA")
	tlsBackend(t, "127.0.97.11:9443", "one.example.com", upCA)
	tlsBackend(t, "127.0.97.12:9443", "two.example.com", upCA)
	passthrough := func(host, cluster string) resource.FilterChain {
		return resource.FilterChain{Match: resource.FilterChainMatch{ServerNames: []string{host}, TransportProtocol: "tls"},
			TCP: &resource.TCPProxy{StatPrefix: cluster, Cluster: cluster, IdleTimeout: time.Hour}}
	}
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{"0.0.0.0_8443": gatewayListener(8443,
			passthrough("one.example.com", "outbound|9443||one.example.com"),
			passthrough("two.example.com", "outbound|9443||two.example.com"))},
		Clusters: map[string]*resource.Cluster{
			"outbound|9443||one.example.com": staticCluster("outbound|9443||one.example.com", "127.0.97.11:9443"),
			"outbound|9443||two.example.com": staticCluster("outbound|9443||two.example.com", "127.0.97.12:9443"),
		},
		Endpoints: map[string]*resource.Endpoints{},
	}
	p := newProxy(t, "127.0.97.10")
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"one.example.com", "two.example.com"} {
		// The upstream's own certificate comes through: the gateway did not terminate TLS.
		c := httpsClient("127.0.97.10:8443", host, upCA.pool(), true)
		a := get(t, c, "https://"+host+"/p")
		c.CloseIdleConnections()
		if a.body != "upstream "+host+" /p" || a.tls.PeerCertificates[0].Subject.CommonName != host {
			t.Errorf("%s: %q (certificate %q)", host, a.body, a.tls.PeerCertificates[0].Subject.CommonName)
		}
	}
	// No chain for the SNI: the connection is closed, as Envoy does.
	_, err := tls.Dial("tcp", "127.0.97.10:8443", &tls.Config{ServerName: "three.example.com", RootCAs: upCA.pool(), MinVersion: tls.VersionTLS12})
	if err == nil {
		t.Fatal("a connection with an unknown SNI was served; want it closed")
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
		t.Logf("closed with %v", err)
	}
}

func TestGatewayTCPServers(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	tcpEcho(t, "127.0.97.13:7000", "db")
	tcpEcho(t, "127.0.97.13:7001", "secure-db")
	tcpChain := func(cluster string) *resource.TCPProxy {
		return &resource.TCPProxy{StatPrefix: cluster, Cluster: cluster, IdleTimeout: time.Hour}
	}
	plain := &resource.Listener{Name: "0.0.0.0_9000", Address: netip.MustParseAddrPort("0.0.0.0:9000"), BindToPort: true, Direction: resource.Outbound,
		FilterChains: []resource.FilterChain{{TCP: tcpChain("db")}}}
	terminated := gatewayListener(9443, resource.FilterChain{Name: "tcp-tls", Match: resource.FilterChainMatch{ServerNames: []string{"db.example.com"}},
		TLS: &resource.DownstreamTLS{Certificates: []resource.CertificatePair{ca.files(t, "db", "db.example.com")}}, TCP: tcpChain("secure-db")})
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{plain.Name: plain, terminated.Name: terminated},
		Clusters:  map[string]*resource.Cluster{"db": staticCluster("db", "127.0.97.13:7000"), "secure-db": staticCluster("secure-db", "127.0.97.13:7001")},
		Endpoints: map[string]*resource.Endpoints{},
	}
	p := newProxy(t, "127.0.97.14")
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	roundTrip := func(c net.Conn) string {
		t.Helper()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "ping"); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(c)
		return string(b)
	}
	c, err := net.Dial("tcp", "127.0.97.14:9000")
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(c); got != "db:ping" {
		t.Errorf("TCP server: %q, want %q", got, "db:ping")
	}
	tc, err := tls.Dial("tcp", "127.0.97.14:9443", &tls.Config{ServerName: "db.example.com", RootCAs: ca.pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(tc); got != "secure-db:ping" {
		t.Errorf("TLS-terminated TCP server: %q, want %q", got, "secure-db:ping")
	}
}

func TestGatewayRequireTLSRedirects(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	echoBackend(t, "127.0.97.16:8080", "www")
	redirecting := vhostRoutes("http.8080", [2]string{"www.example.com", "www"}, [2]string{"plain.example.com", "www"})
	redirecting.VirtualHosts[0].RequireTLS = resource.RequireTLSAll
	secure := vhostRoutes("https.443.www.gw.istio-system", [2]string{"www.example.com", "www"})
	secure.VirtualHosts[0].RequireTLS = resource.RequireTLSAll // served over TLS: no redirect
	httpL := &resource.Listener{Name: "0.0.0.0_8080", Address: netip.MustParseAddrPort("0.0.0.0:8080"), BindToPort: true, Direction: resource.Outbound,
		FilterChains: []resource.FilterChain{{HTTP: gatewayHCM("http.8080")}}}
	s := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{
			httpL.Name: httpL,
			"0.0.0.0_8443": gatewayListener(8443, httpsChain("https.443.www.gw.istio-system", []string{"www.example.com"},
				simpleTLS(ca.files(t, "www", "www.example.com")), "https.443.www.gw.istio-system")),
		},
		Routes:    map[string]*resource.RouteConfig{"http.8080": redirecting, "https.443.www.gw.istio-system": secure},
		Clusters:  map[string]*resource.Cluster{"www": staticCluster("www", "127.0.97.16:8080")},
		Endpoints: map[string]*resource.Endpoints{},
	}
	p := newProxy(t, "127.0.97.15")
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.97.15:8080/a/b?q=1", nil)
	req.Host = "www.example.com"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://www.example.com/a/b?q=1" {
		t.Errorf("plaintext to a require_tls host: %d Location %q, want 301 https://www.example.com/a/b?q=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	req.Host = "plain.example.com"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "www xfp=http /a/b" {
		t.Errorf("plaintext host without require_tls: %d %q", resp.StatusCode, b)
	}
	hc := httpsClient("127.0.97.15:8443", "www.example.com", ca.pool(), true)
	defer hc.CloseIdleConnections()
	if a := get(t, hc, "https://www.example.com/a"); a.code != 200 || a.body != "www xfp=https /a" {
		t.Errorf("over TLS: %d %q, want 200", a.code, a.body)
	}
}

func TestGatewayMissingCertificateKeepsServing(t *testing.T) {
	ca := newCA(t, "gateway test CA")
	startSNIBackends(t)
	p := newProxy(t, "127.0.97.17")
	good := sniSnapshot(t, ca)
	if err := p.Apply(good); err != nil {
		t.Fatal(err)
	}
	bad := sniSnapshot(t, ca)
	l := *bad.Listeners["0.0.0.0_8443"]
	l.FilterChains = append([]resource.FilterChain(nil), l.FilterChains...)
	missing := ca.dir + "/no-such-dir/wild.crt"
	l.FilterChains[1].TLS = simpleTLS(resource.CertificatePair{Chain: resource.DataSource{Filename: missing}, PrivateKey: l.FilterChains[1].TLS.Certificates[0].PrivateKey})
	bad.Listeners["0.0.0.0_8443"] = &l
	err := p.Apply(bad)
	if err == nil {
		t.Fatal("Apply with a missing certificate file succeeded")
	}
	for _, want := range []string{`listener "0.0.0.0_8443"`, `filter chain "https.443.wild.gw.istio-system"`, missing} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	// The configuration in force keeps serving, certificate included.
	c := httpsClient("127.0.97.17:8443", "b.example.com", ca.pool(), true)
	defer c.CloseIdleConnections()
	if a := get(t, c, "https://b.example.com/still"); a.code != 200 || a.body != "wild xfp=https /still" {
		t.Errorf("after the rejected Apply: %d %q", a.code, a.body)
	}
	// A key that does not belong to the certificate is named too.
	bad2 := sniSnapshot(t, ca)
	l2 := *bad2.Listeners["0.0.0.0_8443"]
	l2.FilterChains = append([]resource.FilterChain(nil), l2.FilterChains...)
	other := ca.files(t, "other", "other.example.com")
	l2.FilterChains[0].TLS = simpleTLS(resource.CertificatePair{Chain: l2.FilterChains[0].TLS.Certificates[0].Chain, PrivateKey: other.PrivateKey})
	bad2.Listeners["0.0.0.0_8443"] = &l2
	if err := p.Apply(bad2); err == nil || !strings.Contains(err.Error(), other.PrivateKey.Filename) {
		t.Errorf("mismatched key: error %v, want it to name %s", err, other.PrivateKey.Filename)
	}
}
