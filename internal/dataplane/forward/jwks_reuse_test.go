package forward_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/cluster"
	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/h1server"
	"github.com/lucid-mesh/lucid/internal/dataplane/jwtauthn"
	"github.com/lucid-mesh/lucid/internal/dataplane/pool"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// A RequestAuthentication with a remote key set fetches it while a request waits. When
// the fetch times out, net/http's Transport goes on dialing in the background with a
// context that keeps the fetch context's values, and net.Dialer reads them
// (ctx.Value(nettrace.TraceKey{})). The request got its 401 meanwhile, a local reply, so
// forward releases it and h1server zeroes the request's context for the connection's next
// request: a fetch made with the request's context would then read a context whose parent
// is nil (a nil-pointer panic on a Transport goroutine, which would crash the proxy) or
// another request's. The fetch's context is therefore not the request's.
//
// Here the dial is held (as a slow DNS answer or a blackholed first address would hold
// it) until h1server has finished the connection, then goes on with net.Dialer.
func TestJWKSFetchDialOutlivesReleasedRequest(t *testing.T) {
	type dialResult struct {
		panicked any
	}
	dialing := make(chan struct{}, 1)
	proceed := make(chan struct{})
	var once sync.Once
	letDial := func() { once.Do(func() { close(proceed) }) }
	t.Cleanup(letDial) // a test that stops early leaves no dial blocked
	results := make(chan dialResult, 1)
	refused := refusedAddr(t)
	tr := &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, _ string) (c net.Conn, err error) {
		dialing <- struct{}{}
		<-proceed
		var res dialResult
		defer func() {
			if v := recover(); v != nil {
				res.panicked = v
				err = fmt.Errorf("dial panicked: %v", v)
			}
			results <- res
		}()
		var d net.Dialer
		return d.DialContext(ctx, network, refused)
	}}
	t.Cleanup(tr.CloseIdleConnections)

	chain, err := authz.New([]resource.AuthFilter{{
		Name: "envoy.filters.http.jwt_authn",
		JWT: &resource.JWTAuthn{
			Providers: map[string]*resource.JWTProvider{"origins-0": {
				Name: "origins-0", Issuer: "https://issuer.test",
				RemoteJWKS: &resource.RemoteJWKS{URI: "http://jwks.test/keys", Timeout: 200 * time.Millisecond},
			}},
			Rules: []resource.JWTRule{{Prefix: "/", Requires: resource.JWTRequirement{Kind: resource.JWTProviderName, Provider: "origins-0"}}},
		},
	}}, authz.Options{JWT: jwtauthn.Options{HTTPClient: &http.Client{Transport: tr}}})
	if err != nil {
		t.Fatal(err)
	}
	if chain.CallsOut() {
		t.Fatal("the chain is expected to call no ext_authz server")
	}

	log := slog.New(slog.DiscardHandler)
	cm, ps := cluster.NewManager(log), pool.NewSet(log)
	t.Cleanup(ps.Close)
	fwd := forward.New(forward.Options{Clusters: cm, Pools: ps, Logger: log})
	t.Cleanup(fwd.Close)
	in := forward.Inbound{RouteConfigName: "9080", HTTP: &resource.HTTPManager{ServerName: "istio-envoy"},
		Listener: "0.0.0.0_9080", Direction: "inbound", Authz: chain}

	closed := make(chan struct{}, 1)
	srv := &h1server.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fwd.Serve(w, r, in) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				closed <- struct{}{}
			}
		},
		ReadHeaderTimeout: 5 * time.Second,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-served })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /api HTTP/1.1\r\nHost: svc:9080\r\nAuthorization: Bearer "+unverifiedToken("https://issuer.test")+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401 (the key set cannot be fetched)", resp.StatusCode)
	}
	select {
	case <-dialing:
	case <-time.After(5 * time.Second):
		t.Fatal("the key set fetch did not dial")
	}
	_ = c.Close()
	select { // h1server's loop ended: the request's memory was reset (when released) before
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection did not end")
	}

	letDial()
	res := <-results
	if res.panicked != nil {
		t.Errorf("the key set fetch's dial, still running after the request's 401, read the request's context "+
			"after h1server had reused it: %v", res.panicked)
	}
}

// unverifiedToken is a well-formed JWT with iss (its signature is never checked: the key
// set cannot be fetched).
func unverifiedToken(iss string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." +
		enc([]byte(`{"iss":"`+iss+`","sub":"a","exp":`+fmt.Sprint(time.Now().Add(time.Hour).Unix())+`}`)) + "." +
		enc([]byte("signature"))
}
