package identity

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/catest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const caIP = "127.0.117.50"

var (
	reviews     = spiffe.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "bookinfo-reviews"}
	productpage = spiffe.ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "bookinfo-productpage"}
)

// start dials the CA with tok and runs a Manager for id until the test ends.
func start(t *testing.T, c *catest.CA, id spiffe.ID, tok TokenSource, o Options) (*Manager, *testutil.Buffer) {
	t.Helper()
	cc, client, err := Dial(DialOptions{Address: c.Addr, Roots: c.Roots(), Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	o.Client, o.ID, o.Logger = client, id, slog.New(slog.NewTextHandler(logs, nil))
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; cc.Close() })
	return m, logs
}

func waitReady(t *testing.T, m *Manager) {
	t.Helper()
	select {
	case <-m.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("no certificate within 20 s")
	}
}

func TestIssueAndServe(t *testing.T) {
	c := catest.Start(t, caIP)
	m, logs := start(t, c, reviews, StaticToken(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews")), Options{})
	waitReady(t, m)
	s := m.Current()
	if s.ID != reviews {
		t.Errorf("identity %s, want %s", s.ID, reviews)
	}
	if got := s.Leaf.NotAfter.Sub(s.Updated); got > DefaultTTL || got < DefaultTTL-2*time.Second {
		t.Errorf("lifetime %s, want the default %s", got, DefaultTTL)
	}
	if d := s.RenewAt.Sub(s.Updated); d < 11*time.Hour+45*time.Minute || d > 12*time.Hour+15*time.Minute {
		t.Errorf("renewal due %s after issue, want about half of 24 h", d)
	}
	def, err := m.Resource(ResourceDefault)
	if err != nil || def.Certificate != s.Certificate || def.Version == "" {
		t.Errorf("SDS default: %+v %v", def, err)
	}
	root, err := m.Resource(ResourceRootCA)
	if err != nil || string(root.RootsPEM) != string(c.RootsPEM()) {
		t.Errorf("SDS ROOTCA: %v, roots match %v", err, string(root.RootsPEM) == string(c.RootsPEM()))
	}
	if _, err := m.Resource("file-cert:/etc/certs/cert-chain.pem"); err == nil || !strings.Contains(err.Error(), `the agent serves "default" and "ROOTCA"`) {
		t.Errorf("unknown resource: %v", err)
	}
	if !strings.Contains(logs.String(), "workload certificate issued") {
		t.Errorf("no log line for the issue:\n%s", logs)
	}
}

// TestRefusedCredentials: a wrong token or a missing token file never gets a
// certificate; the agent says why in its log and keeps trying, and a token that appears
// later (a projected token mounted late) is used.
func TestRefusedCredentials(t *testing.T) {
	c := catest.Start(t, caIP)
	c.Token(t, "default/ratings-v1", "default", "bookinfo-ratings") // another workload's
	bad, badLogs := start(t, c, reviews, StaticToken("lucid-local.stolen-or-guessed"), Options{RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	path := filepath.Join(t.TempDir(), "istio-token")
	late, lateLogs := start(t, c, reviews, FileToken(path), Options{RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})

	badLogs.WaitFor(t, "unknown token", 10*time.Second)
	lateLogs.WaitFor(t, "istio-token: no such file", 10*time.Second)
	if bad.Current() != nil || late.Current() != nil {
		t.Fatal("a certificate without a valid credential")
	}
	if !strings.Contains(badLogs.String(), "Unauthenticated") {
		t.Errorf("the log does not carry the CA's code:\n%s", badLogs)
	}
	if err := os.WriteFile(path, []byte(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitReady(t, late)
	if bad.Current() != nil {
		t.Error("the wrong token got a certificate")
	}
}

// TestIdentityIsTheTokens: a workload asking (in its CSR) for another identity than its
// token's gets nothing.
func TestIdentityIsTheTokens(t *testing.T) {
	c := catest.Start(t, caIP)
	m, logs := start(t, c, spiffe.ID{TrustDomain: "cluster.local", Namespace: "istio-system", ServiceAccount: "istiod"},
		StaticToken(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews")), Options{RetryMin: 50 * time.Millisecond})
	logs.WaitFor(t, "never from the CSR", 10*time.Second)
	if m.Current() != nil {
		t.Fatal("the CSR's identity was issued")
	}
}

// TestRotationUnderLoad: two workloads with 4-second certificates renew several times
// while one serves the other over mutual TLS, on kept-alive and new connections, from
// several goroutines: not one request fails, and the certificates really change.
func TestRotationUnderLoad(t *testing.T) {
	c := catest.Start(t, caIP)
	o := Options{TTL: 4 * time.Second}
	server, _ := start(t, c, reviews, StaticToken(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews")), o)
	client, _ := start(t, c, productpage, StaticToken(c.Token(t, "default/productpage-v1", "default", "bookinfo-productpage")), o)
	waitReady(t, server)
	waitReady(t, client)

	ln, err := net.Listen("tcp", "127.0.117.51:0")
	if err != nil {
		t.Fatal(err)
	}
	var peers sync.Map // client identities the server saw
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := spiffe.FromCertificate(r.TLS.PeerCertificates[0])
		peers.Store(id, true)
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(tls.NewListener(ln, server.ServerTLSConfig())) }()
	defer srv.Close()
	url := "https://" + ln.Addr().String()

	var ok, failed atomic.Int64
	var failure atomic.Value
	serials := sync.Map{} // server certificate serials seen by new connections
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		tr := &http.Transport{TLSClientConfig: client.ClientTLSConfig(reviews.String()), DisableKeepAlives: i%2 == 1}
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		wg.Go(func() {
			defer tr.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := hc.Get(url)
				if err != nil {
					failed.Add(1)
					failure.Store(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "ok" {
					failed.Add(1)
					failure.Store("body " + string(b))
					continue
				}
				if tr.DisableKeepAlives {
					serials.Store(resp.TLS.PeerCertificates[0].SerialNumber.String(), true)
				}
				ok.Add(1)
			}
		})
	}
	deadline := time.Now().Add(40 * time.Second)
	for server.Rotations() < 3 || client.Rotations() < 3 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if server.Rotations() < 3 || client.Rotations() < 3 {
		t.Fatalf("rotations: server %d, client %d in 40 s, want 3 each", server.Rotations(), client.Rotations())
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across the rotations; last: %v", n, n+ok.Load(), failure.Load())
	}
	seen := 0
	serials.Range(func(any, any) bool { seen++; return true })
	if seen < 3 {
		t.Errorf("new connections saw %d server certificates across %d renewals", seen, server.Rotations())
	}
	if _, found := peers.Load(productpage); !found {
		t.Error("the server did not see the client's identity")
	}
	t.Logf("%d requests, 0 failed; server renewed %d times, client %d times", ok.Load(), server.Rotations(), client.Rotations())
}

// TestPeerVerification: the client refuses a server whose identity is not the expected
// one, and the server refuses a client without a mesh certificate.
func TestPeerVerification(t *testing.T) {
	c := catest.Start(t, caIP)
	server, _ := start(t, c, reviews, StaticToken(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews")), Options{})
	client, _ := start(t, c, productpage, StaticToken(c.Token(t, "default/productpage-v1", "default", "bookinfo-productpage")), Options{})
	waitReady(t, server)
	waitReady(t, client)
	ln, err := net.Listen("tcp", "127.0.117.52:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0), // the refused handshakes are the point
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(tls.NewListener(ln, server.ServerTLSConfig())) }()
	defer srv.Close()
	get := func(cfg *tls.Config) error {
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + ln.Addr().String())
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(client.ClientTLSConfig("spiffe://cluster.local/ns/default/sa/bookinfo-ratings")); err == nil ||
		!strings.Contains(err.Error(), "the peer is spiffe://cluster.local/ns/default/sa/bookinfo-reviews, not one of the allowed identities") {
		t.Errorf("SAN mismatch: %v", err)
	}
	if err := get(&tls.Config{RootCAs: c.Roots(), InsecureSkipVerify: true}); err == nil {
		t.Error("a client without a mesh certificate was served")
	}
	if err := get(client.ClientTLSConfig()); err != nil {
		t.Errorf("any mesh identity: %v", err)
	}
}

func TestRenewAt(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	expire := created.Add(24 * time.Hour)
	if got := renewAt(created, expire, 0.5, 0); !got.Equal(created.Add(12 * time.Hour)) {
		t.Errorf("ratio 0.5: %v, want 12 h after issue", got)
	}
	for range 200 {
		got := renewAt(created, expire, 0.5, 0.01)
		if d := got.Sub(created); d < 12*time.Hour-15*time.Minute || d > 12*time.Hour+15*time.Minute {
			t.Fatalf("with jitter: renewal %s after issue, want 12 h ± 1 %% of 24 h", d)
		}
	}
	if got := renewAt(created, expire, 1.5, 0); !got.Equal(created) {
		t.Errorf("a ratio over 1 is kept at 1: %v", got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	client := securityv1alpha1.NewIstioCertificateServiceClient(nil) // never called: New only checks options
	tests := []struct {
		o    Options
		want string
	}{
		{Options{ID: reviews}, "no CA client"},
		{Options{Client: client}, "empty trust domain"},
		{Options{Client: client, ID: reviews, GraceRatio: 1.2}, "grace ratio 1.2 must be between 0 and 1"},
	}
	for _, tt := range tests {
		if _, err := New(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.o, err, tt.want)
		}
	}
	if _, _, err := Dial(DialOptions{Address: "x:1", Token: StaticToken("t")}); err == nil {
		t.Error("Dial without roots")
	}
}

func TestSecretsConfigDump(t *testing.T) {
	b, err := SecretsConfigDump(nil)
	if err != nil {
		t.Fatal(err)
	}
	var warming map[string]any
	if err := json.Unmarshal(b, &warming); err != nil {
		t.Fatal(err)
	}
	if warming["@type"] != TypeSecretsConfigDump || warming["dynamic_warming_secrets"] == nil || warming["dynamic_active_secrets"] != nil {
		t.Errorf("before the first certificate: %s", b)
	}
	c := catest.Start(t, caIP)
	m, _ := start(t, c, reviews, StaticToken(c.Token(t, "default/reviews-v1", "default", "bookinfo-reviews")), Options{})
	waitReady(t, m)
	b, err = m.SecretsConfigDump()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name": "default"`, `"name": "ROOTCA"`, `"private_key": {`, `"inline_bytes": "W3JlZGFjdGVkXQ=="`, `"trusted_ca"`, `"version_info": "`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("dump lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		t.Error("the dump carries the private key")
	}
	if got := timestamp(time.Date(2026, 1, 2, 3, 4, 5, 120_000_000, time.FixedZone("x", 3600))); got != "2026-01-02T02:04:05.120Z" {
		t.Errorf("timestamp = %s", got)
	}
}
