package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// staticMTLS is a workload identity that never rotates: the sidecar's certificate and the
// mesh roots (internal/agent/identity gives the live one).
type staticMTLS struct {
	cert  tls.Certificate
	roots *x509.CertPool
}

func (m *staticMTLS) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &m.cert, nil },
		ClientAuth:     tls.RequireAndVerifyClientCert, ClientCAs: m.roots, MinVersion: tls.VersionTLS12,
	}
}

func (m *staticMTLS) ClientTLSConfig(...string) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{m.cert}, RootCAs: m.roots, MinVersion: tls.VersionTLS12}
}

// The caller's identity on captured inbound connections (istio-init's rules redirect them
// to virtualInbound): a mutual-TLS request reaches the app with Istio's
// x-forwarded-client-cert, an AuthorizationPolicy naming the caller's principal lets it in
// and refuses another identity, the same on an opaque TCP port (network RBAC), and the
// record says mutual TLS with both identities, as on the per-port inbound listeners.
func TestCapturedInboundPeerNetns(t *testing.T) {
	netns.Run(t, "TestCapturedInboundPeerChild", "iptables")
}

func TestCapturedInboundPeerChild(t *testing.T) {
	netns.Child(t)
	netns.Sh(t, `ip link add pod0 type veth peer name peer0 && ip addr add 10.77.0.1/16 dev pod0 && ip link set pod0 up && ip link set peer0 up &&
iptables -t nat -A OUTPUT -p tcp -d 10.77.0.1 -m owner --uid-owner 1000 -j REDIRECT --to-ports 15006`)

	const (
		selfID   = "spiffe://cluster.local/ns/default/sa/web"
		callerID = "spiffe://cluster.local/ns/default/sa/client"
		otherID  = "spiffe://cluster.local/ns/default/sa/other"
	)
	ca := testutil.CA(t, "mesh")
	roots := ca.RootPool()
	// The app echoes the header the sidecar gives it.
	ln, err := net.Listen("tcp", "127.0.54.3:9080")
	if err != nil {
		t.Fatal(err)
	}
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Header.Get("X-Forwarded-Client-Cert"))
	})}
	go func() { _ = app.Serve(ln) }()
	t.Cleanup(func() { app.Close() })
	tcpEcho(t, "127.0.54.5:9090", "db")

	lg := &infoLog{}
	px := observedProxy(t, "10.77.0.1", forward.Options{Observers: []func(*streaminfo.Info){lg.observe}, ConnectionObservers: []func(*streaminfo.Info){lg.observe}})
	px.opts.Capture = true
	px.opts.MTLS = &staticMTLS{cert: testutil.Issue(t, ca, false, selfID).TLS, roots: roots}

	onlyCaller := []resource.AuthFilter{{Name: "envoy.filters.rbac", RBAC: &resource.RBACFilter{Rules: &resource.RBAC{Action: resource.RBACAllow,
		Policies: []resource.RBACPolicy{{Name: "ns[default]-policy[web]-rule[0]", Permissions: []resource.Permission{{Kind: resource.PermAny}},
			Principals: []resource.Principal{{Kind: resource.PrincAuthenticated, Authenticated: &resource.StringMatcher{Kind: resource.MatchExact, Value: callerID}}}}}}}}}
	mtls := func(port uint32) resource.FilterChain {
		return resource.FilterChain{Match: resource.FilterChainMatch{DestinationPort: port, TransportProtocol: "tls"}, MTLSMode: "STRICT",
			TLS: &resource.DownstreamTLS{CertificateSDS: "default", ValidationSDS: "ROOTCA", RequireClientCertificate: true}}
	}
	httpChain, tcpChain := mtls(9080), mtls(9090)
	httpChain.HTTP = &resource.HTTPManager{Routes: routeTo("inbound|9080||", "inbound|9080||"), Auth: onlyCaller}
	tcpChain.TCP, tcpChain.Auth = &resource.TCPProxy{Cluster: "inbound|9090||"}, onlyCaller
	s := snapshot("10.77.0.1", 9080, "127.0.54.2:9080", "127.0.54.3:9080")
	s.Listeners["virtualInbound"].FilterChains = []resource.FilterChain{httpChain, tcpChain}
	s.Clusters["inbound|9090||"] = staticCluster("inbound|9090||", "127.0.54.5:9090")
	if err := px.Apply(s); err != nil {
		t.Fatal(err)
	}

	// dial connects as the app to addr (captured) and runs the handshake as id.
	dial := func(t *testing.T, addr, id string) *tls.Conn {
		t.Helper()
		cfg := &tls.Config{Certificates: []tls.Certificate{testutil.Issue(t, ca, true, id).TLS}, RootCAs: roots,
			ServerName: "outbound_.9080_._.web.default.svc.cluster.local", NextProtos: []string{"istio-http/1.1", "istio"},
			InsecureSkipVerify: true, // the server's SPIFFE identity is not a DNS name; the test reads it below
		}
		tc := tls.Client(appDial(t, addr), cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("mutual TLS to %s as %s: %v", addr, id, err)
		}
		if got := tc.ConnectionState().PeerCertificates[0].URIs[0].String(); got != selfID {
			t.Fatalf("the captured connection was answered by %s, want the sidecar (%s)", got, selfID)
		}
		return tc
	}
	get := func(t *testing.T, id string) (int, string) {
		t.Helper()
		tr := &http.Transport{DialTLSContext: func(context.Context, string, string) (net.Conn, error) { return dial(t, "10.77.0.1:9080", id), nil }}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://web.default.svc.cluster.local:9080/who")
		if err != nil {
			t.Fatalf("GET as %s: %v", id, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("HTTP: the app sees the caller in x-forwarded-client-cert", func(t *testing.T) {
		code, xfcc := get(t, callerID)
		if code != 200 || !strings.HasPrefix(xfcc, "By="+selfID+";Hash=") || !strings.HasSuffix(xfcc, `;Subject="";URI=`+callerID) {
			t.Fatalf("got %d, the app saw x-forwarded-client-cert %q; want By=%s;Hash=…;Subject=\"\";URI=%s", code, xfcc, selfID, callerID)
		}
		i := waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.Path == "/who" && i.ResponseCode == 200 })
		if !i.MTLS || i.Source.Principal != callerID || i.Destination.Principal != selfID {
			t.Fatalf("record: mutual TLS %v, source %q, destination %q", i.MTLS, i.Source.Principal, i.Destination.Principal)
		}
	})
	t.Run("HTTP: AuthorizationPolicy refuses another principal", func(t *testing.T) {
		if code, body := get(t, otherID); code != 403 || body != "RBAC: access denied" {
			t.Fatalf("as %s: got %d %q, want 403 RBAC: access denied", otherID, code, body)
		}
	})
	t.Run("TCP: network RBAC on the caller's principal", func(t *testing.T) {
		c := dial(t, "10.77.0.1:9090", callerID)
		if got := roundTrip(t, c, "ping", len("db:ping")); got != "db:ping" {
			t.Fatalf("echo %q", got)
		}
		c.Close()
		i := waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.UpstreamCluster == "inbound|9090||" })
		if !i.MTLS || i.Source.Principal != callerID {
			t.Fatalf("record: mutual TLS %v, source %q", i.MTLS, i.Source.Principal)
		}
		o := dial(t, "10.77.0.1:9090", otherID)
		defer o.Close()
		_, _ = io.WriteString(o, "ping")
		if b, _ := io.ReadAll(o); len(b) != 0 {
			t.Fatalf("as %s the connection got %q; want it closed by the AuthorizationPolicy", otherID, b)
		}
	})
}
