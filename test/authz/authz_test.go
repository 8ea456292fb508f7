// Package authz plays the authorization cases of testdata/cases.yaml (Istio's
// AuthorizationPolicy and RequestAuthentication semantics, request × policy → verdict)
// through the real pipeline without sidecars: config.Parse → model.Build →
// translate.Generate → the xDS wire form → xdsclient.DecodeListener → authz.Chain (rbac,
// jwtauthn, extauthz), with JWTs signed by keys the test generates and ext_authz answered by
// a real HTTP authorization server on loopback.
package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/goleak"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/model"
	"github.com/lucid-mesh/lucid/internal/controlplane/translate"
	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/extauthz"
	"github.com/lucid-mesh/lucid/internal/dataplane/pathnorm"
	"github.com/lucid-mesh/lucid/internal/dataplane/rbac"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/xdsclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The workload under test (testdata/registry.yaml) and the test's loopback addresses.
const (
	nodeID        = "sidecar~127.0.181.10~httpbin.foo~foo.svc.cluster.local"
	workloadAddr  = "127.0.181.10"
	extAuthzAddr  = "127.0.181.20:0"
	extAuthzDown  = "127.0.181.21:1" // nothing listens there
	defaultHost   = "httpbin.foo.svc.cluster.local"
	defaultSource = "10.0.0.1"
)

type suiteFile struct {
	Suites []suite `yaml:"suites"`
}

type suite struct {
	Name   string  `yaml:"name"`
	Mesh   string  `yaml:"mesh"`
	Config string  `yaml:"config"`
	Cases  []tcase `yaml:"cases"`

	lenient bool // keep what config accepts instead of failing on a rejected object (fuzzing)
}

type tcase struct {
	Name    string  `yaml:"name"`
	Request request `yaml:"request"`
	Want    want    `yaml:"want"`
}

type request struct {
	Principal        string              `yaml:"principal"`
	Method           string              `yaml:"method"`
	Path             string              `yaml:"path"`
	Host             string              `yaml:"host"`
	Headers          map[string]string   `yaml:"headers"`
	HeadersMulti     map[string][]string `yaml:"headersMulti"`
	SourceIP         string              `yaml:"sourceIP"`
	XFF              string              `yaml:"xff"`
	UseRemoteAddress bool                `yaml:"useRemoteAddress"`
	TrustedHops      uint32              `yaml:"trustedHops"`
	Port             uint32              `yaml:"port"`
	TCP              bool                `yaml:"tcp"`
	SNI              string              `yaml:"sni"`
	DestinationIP    string              `yaml:"destinationIP"`
	JWT              *jwtSpec            `yaml:"jwt"`
	ExtAuthz         string              `yaml:"extAuthz"`
}

type jwtSpec struct {
	Iss    string         `yaml:"iss"`
	Sub    string         `yaml:"sub"`
	Aud    string         `yaml:"aud"`
	Azp    string         `yaml:"azp"`
	Claims map[string]any `yaml:"claims"`
	Exp    string         `yaml:"exp"`
	Nbf    string         `yaml:"nbf"`
	Alg    string         `yaml:"alg"`
	Key    string         `yaml:"key"`
	Header string         `yaml:"header"`
	Prefix string         `yaml:"prefix"`
	Param  string         `yaml:"param"`
	Cookie string         `yaml:"cookie"`
	Raw    string         `yaml:"raw"`
}

type want struct {
	Status          int               `yaml:"status"`
	Details         string            `yaml:"details"`
	Flags           string            `yaml:"flags"`
	Explain         string            `yaml:"explain"`
	Body            *string           `yaml:"body"`
	Audit           bool              `yaml:"audit"`
	DryRun          string            `yaml:"dryRun"`
	Principal       string            `yaml:"principal"`
	UpstreamHeaders map[string]string `yaml:"upstreamHeaders"`
	UpstreamAbsent  []string          `yaml:"upstreamAbsent"`
	TLSRefused      bool              `yaml:"tlsRefused"`
}

func loadSuites(t testing.TB) []suite {
	t.Helper()
	s, err := loadSuitesFile()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func loadSuitesFile() ([]suite, error) {
	data, err := os.ReadFile(filepath.Join("testdata", "cases.yaml"))
	if err != nil {
		return nil, err
	}
	var f suiteFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("testdata/cases.yaml: %w", err)
	}
	return f.Suites, nil
}

// TestAuthorizationCases runs every case of testdata/cases.yaml.
func TestAuthorizationCases(t *testing.T) {
	keys := newKeys(t)
	authzServer := startAuthzServer(t)
	suites := loadSuites(t)
	n := 0
	for _, s := range suites {
		t.Run(s.Name, func(t *testing.T) {
			chains := buildChains(t, s, keys, authzServer)
			for _, c := range s.Cases {
				n++
				t.Run(c.Name, func(t *testing.T) { runCase(t, chains, keys, authzServer, c) })
			}
		})
	}
	if n < 60 {
		t.Errorf("%d cases; the suite promises at least 60", n)
	}
}

// chains are the decoded authorization filters of the workload's inbound chains, by port.
type chains struct {
	http map[uint32]*authz.Chain
	tcp  map[uint32]*authz.Chain
}

// buildChains runs the suite's configuration through the control plane and the sidecar's
// decoder, as a sidecar would receive it.
func buildChains(t testing.TB, s suite, keys *testKeys, srv *authzServer) *chains {
	t.Helper()
	inbound := decodedInbound(t, s, keys)
	out := &chains{http: map[uint32]*authz.Chain{}, tcp: map[uint32]*authz.Chain{}}
	opts := authz.Options{ExtAuthz: extauthz.Options{Transport: srv.transport, Resolve: srv.resolve}}
	for _, fc := range inbound.FilterChains {
		port := fc.Match.DestinationPort
		if fc.HTTP != nil {
			ch, err := authz.New(fc.HTTP.Auth, opts)
			if err != nil {
				t.Fatal(err)
			}
			out.http[port] = ch
		}
		ch, err := authz.New(fc.Auth, opts)
		if err != nil {
			t.Fatal(err)
		}
		out.tcp[port] = ch
	}
	return out
}

// decodedInbound is the workload's virtualInbound listener as the sidecar decodes it.
func decodedInbound(t testing.TB, s suite, keys *testKeys) *resource.Listener {
	t.Helper()
	registry, err := os.ReadFile(filepath.Join("testdata", "registry.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := parse(t, "registry.yaml", string(registry))
	cfg := s.Config
	if keys != nil {
		cfg = strings.ReplaceAll(cfg, "{{JWKS}}", keys.jwks)
	}
	if s.lenient {
		objs = append(objs, parseAccepted(t, "suite.yaml", cfg)...)
	} else {
		objs = append(objs, parse(t, "suite.yaml", cfg)...)
	}
	mc := config.DefaultMeshConfig()
	if s.Mesh != "" {
		path := filepath.Join(t.TempDir(), "mesh.yaml")
		if err := os.WriteFile(path, []byte(s.Mesh), 0o600); err != nil {
			t.Fatal(err)
		}
		if mc, err = config.LoadMeshConfig(path); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := model.Build(objs, mc)
	p, err := model.ParseNodeID(nodeID)
	if err != nil {
		t.Fatal(err)
	}
	res := translate.Generate(m, m.ResolveProxy(p))
	var inbound *resource.Listener
	for _, msg := range res.Listeners {
		l := msg.(*listenerpb.Listener)
		if l.GetName() != translate.VirtualInbound {
			continue
		}
		wire, err := proto.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var got listenerpb.Listener
		if err := proto.Unmarshal(wire, &got); err != nil {
			t.Fatal(err)
		}
		if inbound, err = xdsclient.DecodeListener(&got); err != nil {
			t.Fatalf("the sidecar would NACK the inbound listener: %v", err)
		}
	}
	if inbound == nil {
		t.Fatal("no virtualInbound listener")
	}
	return inbound
}

// parseAccepted is what the control plane keeps of docs: the objects config accepts.
func parseAccepted(t testing.TB, file, docs string) []*config.Object {
	t.Helper()
	objs, _ := config.Parse(file, []byte(docs))
	return objs
}

func parse(t testing.TB, file, docs string) []*config.Object {
	t.Helper()
	objs, diags := config.Parse(file, []byte(docs))
	for _, d := range diags {
		if d.Level == config.Error {
			t.Fatalf("config: %s", d)
		}
	}
	return objs
}

func runCase(t *testing.T, ch *chains, keys *testKeys, srv *authzServer, c tcase) {
	t.Helper()
	r := c.Request
	port := r.Port
	if port == 0 {
		port = 8000
	}
	peer := netip.MustParseAddr(or(r.SourceIP, defaultSource))
	local := netip.AddrPortFrom(netip.MustParseAddr(or(r.DestinationIP, workloadAddr)), uint16(port))
	conn := authz.Conn{Peer: peer, Local: local, SNI: r.SNI}
	if r.Principal != "" {
		conn.Principal = "spiffe://" + r.Principal
	}
	status, details, flags, explain, body := 200, "", "", "", ""
	var d authz.Decision
	var upstream http.Header
	if r.TCP {
		chain := ch.tcp[port]
		if chain == nil {
			t.Fatalf("no inbound chain for port %d", port)
		}
		cd := chain.CheckConn(conn)
		if !cd.Allowed {
			status, details, explain = 403, cd.Details, cd.Explanation
		}
		d.DryRun = cd.DryRun
	} else {
		chain := ch.http[port]
		if chain == nil {
			t.Fatalf("no inbound HTTP chain for port %d", port)
		}
		req := httpRequest(t, r, keys)
		path, action := pathnorm.Normalize(req.RequestURI, pathnorm.ForMode(pathnorm.Base))
		if action != pathnorm.Continue {
			t.Fatalf("path %q: normalisation %v", req.RequestURI, action)
		}
		var xff []string
		if r.XFF != "" {
			xff = []string{r.XFF}
		}
		srv.mode.Store(r.ExtAuthz)
		d = chain.CheckHTTP(context.Background(), &authz.HTTPInput{
			Conn: conn, Request: req, Path: path, Scheme: "http",
			RemoteIP: rbac.RemoteAddress(peer, xff, r.UseRemoteAddress, r.TrustedHops),
		})
		if d.Reply != nil {
			status, details, explain, body = d.Reply.Status, d.Reply.Details, d.Reply.Explanation, d.Reply.Body
			if d.Reply.External {
				flags = "UAEX" // forward's flag for an ext_authz refusal
			}
		}
		upstream = req.Header.Clone()
		d.Apply(upstream)
	}
	w := c.Want
	if status != w.Status {
		t.Fatalf("status %d, want %d (details %q, explanation %q)", status, w.Status, details, explain)
	}
	if !strings.Contains(details, w.Details) {
		t.Errorf("details %q, want it to contain %q", details, w.Details)
	}
	if flags != w.Flags {
		t.Errorf("flags %q, want %q", flags, w.Flags)
	}
	if !strings.Contains(explain, w.Explain) {
		t.Errorf("explanation\n  %q\nwant it to contain\n  %q", explain, w.Explain)
	}
	if w.Body != nil && body != *w.Body {
		t.Errorf("body %q, want %q", body, *w.Body)
	}
	if d.Audit != w.Audit {
		t.Errorf("audit %v, want %v", d.Audit, w.Audit)
	}
	dry := strings.Join(d.DryRun, "\n")
	if (w.DryRun == "") != (dry == "") || !strings.Contains(dry, w.DryRun) {
		t.Errorf("dry-run %q, want %q", dry, w.DryRun)
	}
	if w.Principal != "" && d.Principal != w.Principal {
		t.Errorf("request principal %q, want %q", d.Principal, w.Principal)
	}
	for k, v := range w.UpstreamHeaders {
		if got := upstream.Get(k); got != v {
			t.Errorf("upstream header %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range w.UpstreamAbsent {
		if got := upstream.Get(k); got != "" {
			t.Errorf("upstream header %s = %q, want it removed", k, got)
		}
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// httpRequest builds the request as the sidecar's server would see it.
func httpRequest(t *testing.T, r request, keys *testKeys) *http.Request {
	t.Helper()
	target := or(r.Path, "/")
	u, err := url.ParseRequestURI(target)
	if err != nil {
		t.Fatalf("path %q: %v", target, err)
	}
	req := &http.Request{
		Method: or(r.Method, http.MethodGet), URL: u, RequestURI: target,
		Host: or(r.Host, defaultHost), Header: http.Header{},
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	for k, vs := range r.HeadersMulti {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.XFF != "" {
		req.Header.Set("X-Forwarded-For", r.XFF)
	}
	if r.ExtAuthz != "" {
		req.Header.Set("X-Ext-Authz", r.ExtAuthz) // the provider passes it to the server
	}
	if r.JWT != nil {
		tok := r.JWT.Raw
		if tok == "" {
			tok = keys.sign(t, r.JWT)
		}
		switch {
		case r.JWT.Param != "":
			q := u.Query()
			q.Set(r.JWT.Param, tok)
			u.RawQuery = q.Encode()
			req.RequestURI = u.RequestURI()
		case r.JWT.Cookie != "":
			req.AddCookie(&http.Cookie{Name: r.JWT.Cookie, Value: tok})
		case r.JWT.Header != "":
			req.Header.Set(r.JWT.Header, r.JWT.Prefix+tok)
		default:
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return req
}

// testKeys are the test's signing keys and the JWKS of their public halves.
type testKeys struct {
	rsa, other *rsa.PrivateKey
	ec         *ecdsa.PrivateKey
	ed         ed25519.PrivateKey
	jwks       string
}

func newKeys(t testing.TB) *testKeys {
	t.Helper()
	k := &testKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.rsa.PublicKey, KeyID: "rsa", Use: "sig"},
		{Key: &k.ec.PublicKey, KeyID: "ec", Use: "sig"},
		{Key: k.ed.Public(), KeyID: "ed", Use: "sig"},
	}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	k.jwks = string(b)
	return k
}

func (k *testKeys) sign(t testing.TB, s *jwtSpec) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for name, v := range map[string]string{"iss": s.Iss, "sub": s.Sub, "aud": s.Aud, "azp": s.Azp} {
		if v != "" {
			claims[name] = v
		}
	}
	for _, tc := range []struct {
		claim, offset string
	}{{"exp", s.Exp}, {"nbf", s.Nbf}} {
		if tc.offset != "" {
			d, err := time.ParseDuration(tc.offset)
			if err != nil {
				t.Fatal(err)
			}
			claims[tc.claim] = now.Add(d).Unix()
		}
	}
	for name, v := range s.Claims {
		claims[name] = v
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	alg := jose.SignatureAlgorithm(or(s.Alg, "RS256"))
	var key jose.JSONWebKey
	switch {
	case s.Key == "other":
		key = jose.JSONWebKey{Key: k.other, KeyID: "rsa"}
	case alg == jose.ES256:
		key = jose.JSONWebKey{Key: k.ec, KeyID: "ec"}
	case alg == jose.EdDSA:
		key = jose.JSONWebKey{Key: k.ed, KeyID: "ed"}
	default:
		key = jose.JSONWebKey{Key: k.rsa, KeyID: "rsa"}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authzServer is the CUSTOM provider: a real HTTP authorization server that allows or
// denies by the x-ext-authz header (which the provider sends along), and can be made
// unreachable.
type authzServer struct {
	addr      string
	transport *http.Transport
	mode      atomic.Value // "down" makes resolve return an address nothing listens on
	mu        sync.Mutex
	checks    []string // paths the server was asked about
}

func startAuthzServer(t *testing.T) *authzServer {
	t.Helper()
	ln, err := net.Listen("tcp", extAuthzAddr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", extAuthzAddr, err)
	}
	s := &authzServer{addr: ln.Addr().String(), transport: &http.Transport{Proxy: nil}}
	s.mode.Store("")
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.checks = append(s.checks, r.URL.Path)
		s.mu.Unlock()
		answerCheck(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		s.transport.CloseIdleConnections()
	})
	return s
}

// answerCheck is the test authorization server's answer to a check: the X-Ext-Authz header
// (which the provider passes on) allows, anything else is denied with a body and a header.
func answerCheck(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/check/") {
		http.Error(w, "no path prefix", http.StatusBadRequest)
		return
	}
	switch r.Header.Get("X-Ext-Authz") {
	case "allow":
		w.Header().Set("X-Authz-User", "alice")
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("X-Authz-Reason", "not allowed")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "denied by the test server")
	}
}

// resolve sends checks to the server, or nowhere in mode "down".
func (s *authzServer) resolve(string) (string, error) {
	if s.mode.Load() == "down" {
		return extAuthzDown, nil
	}
	return s.addr, nil
}
