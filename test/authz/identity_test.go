package authz

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/pki"
	"github.com/lucid-mesh/lucid/internal/testutil/meshtest"
)

// The identity runner plays the cases the plaintext runner (sidecar_test.go) cannot: the
// mesh runs its CA, httpbin's sidecar gets its workload certificate from it and enforces
// mutual TLS (PeerAuthentication STRICT, or PERMISSIVE when a suite also has plaintext
// clients), and the client presents a certificate the mesh CA issued for the case's
// principal (spiffe://<principal>), with Istio's ALPN and, for connection.sni, the SNI a
// client sidecar sends. A case without a principal is a plaintext client, which only
// PERMISSIVE lets in and which no principal rule can match, as in Istio.
//
// Addresses are real too: the client's socket is bound to a loopback address standing in
// for the case's source address (loopbackFor), and the suite's ipBlocks, remoteIpBlocks,
// source.ip, remote.ip and destination.ip values, the x-forwarded-for values and the
// expected explanations are rewritten with the same table, so containment is kept
// (10.1.2.3 in 10.1.0.0/16 becomes 127.0.187.49 in 127.0.187.48/29).

// scCA is the mesh CA's address in the sidecar test's subnet.
const scCA = "127.0.187.100:15012"

// loopbackFor maps the cases' addresses and blocks to loopback stand-ins in 127.0.187.0/24.
var loopbackFor = map[string]string{
	"127.0.181.0/24": "127.0.187.0/28", // the workload's block: httpbin's sidecar is .10
	"10.0.0.1":       "127.0.187.40",   // the default source address
	"10.1.0.0/16":    "127.0.187.48/29",
	"10.1.2.3":       "127.0.187.49",
	"192.168.0.7":    "127.0.187.56",
	"10.2.0.1":       "127.0.187.57",
	"10.66.0.0/16":   "127.0.187.64/29",
	"10.66.1.1":      "127.0.187.65",
	"203.0.113.0/24": "127.0.187.72/29",
	"203.0.113.5":    "127.0.187.73",
	"203.0.113.9":    "127.0.187.74",
	"10.9.9.9":       "127.0.187.80",
}

var addressToken = regexp.MustCompile(`\b\d+\.\d+\.\d+\.\d+(/\d+)?\b`)

// toLoopback rewrites the addresses of s that loopbackFor maps.
func toLoopback(s string) string {
	return addressToken.ReplaceAllStringFunc(s, func(a string) string {
		if l, ok := loopbackFor[a]; ok {
			return l
		}
		return a
	})
}

// identitySkip says why the identity runner does not play a case ("" if it does): it
// plays the suites of which the plaintext runner skips a case, all of their cases (so
// their plaintext clients meet a sidecar that speaks mutual TLS).
func identitySkip(s suite, c tcase) string {
	r := c.Request
	switch {
	case !slices.ContainsFunc(s.Cases, func(c tcase) bool { return sidecarSkip(s, c) != "" }):
		return "played in plaintext by TestAuthorizationThroughSidecar"
	case r.DestinationIP != "":
		return "needs a connection to another destination address (" + r.DestinationIP + "): a sidecar's inbound listener binds its workload address only, so nothing sent elsewhere reaches it; destination.ip is played with the workload's own address"
	case r.UseRemoteAddress || r.TrustedHops != 0:
		return "gateway x-forwarded-for trust: played through real gateways by TestRemoteIPThroughGateway"
	}
	return ""
}

// TestAuthorizationWithIdentities plays the cases that need the client's mTLS identity, a
// source address, x-forwarded-for or an SNI through a real sidecar enforcing mutual TLS.
func TestAuthorizationWithIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh per suite")
	}
	keys, ext, registry := sidecarFixtures(t)
	played, skipped := 0, map[string]int{}
	for _, s := range loadSuites(t) {
		var cases []tcase
		plaintext := false
		for _, c := range s.Cases {
			if why := identitySkip(s, c); why != "" {
				if sidecarSkip(s, c) != "" {
					skipped[why]++
					t.Logf("%s / %s: skipped: %s", s.Name, c.Name, why)
				}
				continue
			}
			c.Request.SourceIP = toLoopback(or(c.Request.SourceIP, defaultSource))
			c.Request.XFF = toLoopback(c.Request.XFF)
			c.Want.Explain = toLoopback(c.Want.Explain)
			plaintext = plaintext || (c.Request.Principal == "" && c.Request.SNI == "")
			cases = append(cases, c)
		}
		if len(cases) == 0 {
			continue
		}
		s.Config = toLoopback(s.Config)
		mode := "STRICT"
		if plaintext {
			mode = "PERMISSIVE" // its plaintext clients must get in to be judged by the policies
		}
		t.Run(s.Name, func(t *testing.T) {
			o := meshtest.Options{MTLS: scCA, TrustDomain: meshTrustDomain(t, s.Mesh)}
			m := startSuiteMesh(t, s, keys, registry, o, map[string]string{"peerauth.yaml": peerAuth(mode)})
			defer m.Stop()
			issuer := meshIssuer(t, m.Mesh)
			for _, c := range cases {
				played++
				t.Run(c.Name, func(t *testing.T) {
					for _, a := range []string{c.Request.SourceIP} {
						if !strings.HasPrefix(a, "127.0.187.") {
							t.Fatalf("source address %s has no loopback stand-in (loopbackFor)", a)
						}
					}
					playCase(t, m, keys, ext, c, issuer.dialer(c.Request))
				})
			}
			if mode == "STRICT" {
				t.Run("a plaintext client is refused before any policy", func(t *testing.T) {
					if tcpKept(t, dial(t, scHTTPBin+":8000")) {
						t.Fatal("a plaintext client got an answer from a STRICT port")
					}
				})
			}
		})
	}
	t.Logf("%d cases played with identities and addresses; skipped: %v", played, skipped)
	if played < 45 {
		t.Errorf("only %d cases played with identities and addresses; want at least 45", played)
	}
}

// meshTrustDomain is the trust domain of a suite's mesh config ("": cluster.local).
func meshTrustDomain(t *testing.T, mesh string) string {
	t.Helper()
	var mc struct {
		TrustDomain string `yaml:"trustDomain"`
	}
	if err := yaml.Unmarshal([]byte(mesh), &mc); err != nil {
		t.Fatal(err)
	}
	return mc.TrustDomain
}

// peerAuth is the mesh-wide PeerAuthentication in mode.
func peerAuth(mode string) string {
	return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: ` + mode + `}}
`
}

// issuer issues client certificates with the mesh CA's signing authority (as the CA does
// for a workload's CSR) for any principal, including other trust domains: a workload of
// a mesh that shares the root (a trust domain migration keeps the old domain's
// certificates under the same root).
type issuer struct {
	auth  *pki.Authority
	roots *x509.CertPool
	certs map[string]tls.Certificate
}

func meshIssuer(t *testing.T, m *meshtest.Mesh) *issuer {
	t.Helper()
	l, err := ca.Load(context.Background(), ca.DirStore{Dir: m.State}, ca.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{auth: l.Authority, roots: l.Authority.RootPool(), certs: map[string]tls.Certificate{}}
}

// certificate is a client certificate for spiffe://<principal>.
func (is *issuer) certificate(t *testing.T, principal string) tls.Certificate {
	t.Helper()
	if c, ok := is.certs[principal]; ok {
		return c
	}
	u, err := url.Parse("spiffe://" + principal)
	if err != nil {
		t.Fatal(err)
	}
	c, err := is.auth.Issue(pki.Template{URIs: []*url.URL{u}, Usage: pki.ClientAuth | pki.ServerAuth, Validity: time.Hour}, pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	is.certs[principal] = *c
	return *c
}

// sniClient is the identity of a client that sends an SNI but whose case names no
// principal (an SNI reaches a sidecar only from another sidecar, over mutual TLS).
const sniClient = "cluster.local/ns/default/sa/client"

// dialer connects from the case's source address; with a principal or an SNI it speaks
// mutual TLS as a client sidecar does (Istio's ALPN, the server's identity checked
// against the mesh roots), else plaintext.
func (is *issuer) dialer(r request) dialFunc {
	return func(t *testing.T, addr string) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(r.SourceIP)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s from %s: %v", addr, r.SourceIP, err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if r.Principal == "" && r.SNI == "" {
			return c
		}
		cert := is.certificate(t, or(r.Principal, sniClient))
		tc := tls.Client(c, &tls.Config{
			Certificates: []tls.Certificate{cert},
			ServerName:   r.SNI,
			NextProtos:   []string{"istio-peer-exchange", "istio"},
			// The server's certificate names a SPIFFE identity, not the SNI: verify the chain
			// and the identity ourselves.
			InsecureSkipVerify: true,
			VerifyConnection:   is.verifyServer,
			MinVersion:         tls.VersionTLS12,
		})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("mutual TLS with %s as %s: %v", addr, or(r.Principal, sniClient), err)
		}
		return tc
	}
}

// verifyServer checks that the server is httpbin's sidecar with a mesh certificate.
func (is *issuer) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("the server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: is.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return err
	}
	if len(leaf.URIs) == 0 || !strings.HasSuffix(leaf.URIs[0].String(), "/ns/foo/sa/httpbin") {
		return fmt.Errorf("the server is %v, not httpbin", leaf.URIs)
	}
	return nil
}

// TestPrincipalFromClientSidecar: the client is a real sidecar with its own workload
// certificate from the mesh CA (auto mTLS), the server's sidecar enforces STRICT, and the
// policy allows GET /info* from sleep's identity only: sleep gets the app's answer,
// another service account and another path get Envoy's 403 with x-lucid-error naming the
// attribute that decided.
func TestPrincipalFromClientSidecar(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh")
	}
	const sleepIP, otherIP = "127.0.187.12", "127.0.187.13"
	clients := `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep, namespace: default}
spec: {address: ` + sleepIP + `, labels: {app: sleep}, serviceAccount: sleep}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: other, namespace: default}
spec: {address: ` + otherIP + `, labels: {app: other}, serviceAccount: other}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  rules:
    - from: [{source: {principals: ["cluster.local/ns/default/sa/sleep"]}}]
      to: [{operation: {methods: ["GET"], paths: ["/info*"]}}]
`
	files := map[string]string{"registry.yaml": sidecarRegistry(t), "clients.yaml": clients, "peerauth.yaml": peerAuth("STRICT")}
	m := meshtest.StartWith(t, meshtest.Options{MTLS: scCA}, files, []meshtest.Workload{
		{Name: "httpbin", Namespace: "foo", IP: scHTTPBin, AppIP: scApp, Ports: []int{8000}, Labels: map[string]string{"app": "httpbin", "version": "v1"}, ServiceAccount: "httpbin"},
		{Name: "sleep", IP: sleepIP, Labels: map[string]string{"app": "sleep"}, ServiceAccount: "sleep"},
		{Name: "other", IP: otherIP, Labels: map[string]string{"app": "other"}, ServiceAccount: "other"},
	})
	defer m.Stop()
	waitListening(t, scHTTPBin+":8000")
	for _, c := range []struct {
		from, path string
		status     int
		explain    string
	}{
		{from: sleepIP, path: "/info", status: 200},
		{from: otherIP, path: "/info", status: 403, explain: `source.principal "spiffe://cluster.local/ns/default/sa/other" does not match exact "spiffe://cluster.local/ns/default/sa/sleep"`},
		{from: sleepIP, path: "/ip", status: 403, explain: `path "/ip" does not match prefix "/info"`},
	} {
		resp, err := m.Client(c.from).Get("http://httpbin.foo.svc.cluster.local:8000" + c.path)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", c.path, c.from, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		x := resp.Header.Get("X-Lucid-Error")
		if resp.StatusCode != c.status {
			t.Fatalf("GET %s from %s: %d %q (x-lucid-error %q), want %d", c.path, c.from, resp.StatusCode, b, x, c.status)
		}
		if c.status == 200 {
			var e meshtest.Echo
			if err := json.Unmarshal(b, &e); err != nil || e.Service != "httpbin" {
				t.Fatalf("the answer is not httpbin's: %q", b)
			}
			if xfcc := e.Headers.Get("X-Forwarded-Client-Cert"); !strings.Contains(xfcc, "URI=spiffe://cluster.local/ns/default/sa/sleep") {
				t.Errorf("the app sees X-Forwarded-Client-Cert %q; want sleep's identity", xfcc)
			}
			continue
		}
		if string(b) != "RBAC: access denied" || !strings.Contains(x, c.explain) {
			t.Errorf("GET %s from %s: body %q, x-lucid-error %q; want RBAC: access denied and %q", c.path, c.from, b, x, c.explain)
		}
	}
}
