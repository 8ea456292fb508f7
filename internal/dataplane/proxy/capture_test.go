package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lucid-mesh/lucid/internal/dataplane/forward"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// Capture mode in a private network namespace with real REDIRECT rules: the "app" is this
// process's connections made with file-system uid 1000, which the rules redirect (outbound
// to 15001, to the pod address 10.77.0.1 to 15006); the proxy's own connections (uid 0
// here) are left alone, as a sidecar's uid 1337 is.

const appUID = 1000

func TestCaptureDispatchNetns(t *testing.T) {
	netns.Run(t, "TestCaptureDispatchChild", "iptables")
}

func TestCaptureDispatchChild(t *testing.T) {
	netns.Child(t)
	netns.Sh(t, `ip link add pod0 type veth peer name peer0 && ip addr add 10.77.0.1/16 dev pod0 && ip addr add 10.77.0.20/32 dev pod0 && ip link set pod0 up && ip link set peer0 up &&
iptables -t nat -A OUTPUT -p tcp -d 10.77.0.1 -m owner --uid-owner 1000 -j REDIRECT --to-ports 15006 &&
iptables -t nat -A OUTPUT -p tcp -d 10.77.0.0/16 -m owner --uid-owner 1000 -j REDIRECT --to-ports 15001 &&
iptables -A OUTPUT -p tcp -d 10.77.0.20 -m owner --uid-owner 1000 -j REJECT --reject-with tcp-reset`) // only captured, it reaches the external host

	backend(t, "127.0.54.2:9080", "svc")          // reviews, behind 0.0.0.0_9080
	backend(t, "127.0.54.3:9080", "app")          // the app's declared inbound port
	backend(t, "10.77.0.20:80", "external")       // a host in no registry
	tcpEcho(t, "127.0.54.4:3306", "mysql")        // a TCP service behind 10.77.0.30_3306
	undeclared := remoteEcho(t, "10.77.0.1:7777") // the app's undeclared port: answers its peer's address

	lg := &infoLog{}
	px := newCaptureProxy(t, lg)
	s := snapshot("10.77.0.1", 9080, "127.0.54.2:9080", "127.0.54.3:9080")
	s.Listeners["10.77.0.30_3306"] = &resource.Listener{Name: "10.77.0.30_3306", Address: netip.MustParseAddrPort("10.77.0.30:3306"), Direction: resource.Outbound,
		FilterChains: []resource.FilterChain{{TCP: &resource.TCPProxy{Cluster: "mysql"}}}}
	s.Clusters["mysql"] = staticCluster("mysql", "127.0.54.4:3306")
	s.Listeners["virtualInbound"].DefaultChain = &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "InboundPassthroughCluster"}}
	s.Clusters["InboundPassthroughCluster"] = &resource.Cluster{Name: "InboundPassthroughCluster", Type: resource.OriginalDst, ConnectTimeout: time.Second,
		BindAddress: netip.MustParseAddr("127.0.0.6")}
	s.Clusters["BlackHoleCluster"] = &resource.Cluster{Name: "BlackHoleCluster", Type: resource.Static, ConnectTimeout: time.Second}
	if err := px.Apply(s); err != nil {
		t.Fatal(err)
	}
	if got := px.Listening(); len(got) != 2 || got[0].Address.String() != "0.0.0.0:15001" || got[1].Address.String() != "0.0.0.0:15006" {
		t.Fatalf("listening %+v, want virtualOutbound on 0.0.0.0:15001 and virtualInbound on 0.0.0.0:15006 only", got)
	}

	t.Run("captured HTTP goes to 0.0.0.0_<port> and routes by Host", func(t *testing.T) {
		if code, body := appGet(t, "http://10.77.0.10:9080/x"); code != 200 || body != "svc /x" {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("a destination with no listener passes through to the original destination", func(t *testing.T) {
		if code, body := appGet(t, "http://10.77.0.20/direct"); code != 200 || body != "external /direct" {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("an <ip>_<port> TCP listener wins for its address", func(t *testing.T) {
		c := appDial(t, "10.77.0.30:3306")
		defer c.Close()
		if got := roundTrip(t, c, "ping", len("mysql:ping")); got != "mysql:ping" {
			t.Fatalf("echo %q", got)
		}
	})
	t.Run("the explicit proxy keeps working on the same port", func(t *testing.T) {
		if code, body := proxied(t, "127.0.0.1:15001", "http://anything:9080/e"); code != 200 || body != "svc /e" {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("inbound to a declared port runs its chain", func(t *testing.T) {
		if code, body := appGet(t, "http://10.77.0.1:9080/in"); code != 200 || body != "app /in" {
			t.Fatalf("got %d %q", code, body)
		}
	})
	t.Run("inbound to an undeclared port passes through from 127.0.0.6", func(t *testing.T) {
		c := appDial(t, "10.77.0.1:7777")
		defer c.Close()
		peer, _ := io.ReadAll(c)
		if !strings.HasPrefix(string(peer), "127.0.0.6:") {
			t.Fatalf("the app saw its peer as %q, want 127.0.0.6 (InboundPassthroughCluster)", peer)
		}
		if n := undeclared(); n != 1 {
			t.Fatalf("the app accepted %d connections, want 1 (no loop)", n)
		}
	})

	// REGISTRY_ONLY: the default chain targets BlackHoleCluster.
	s.Listeners["virtualOutbound"].DefaultChain = &resource.FilterChain{TCP: &resource.TCPProxy{Cluster: "BlackHoleCluster"}}
	if err := px.Apply(s); err != nil {
		t.Fatal(err)
	}
	t.Run("REGISTRY_ONLY closes a connection to a destination with no listener", func(t *testing.T) {
		c := appDial(t, "10.77.0.20:80")
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Fatalf("read %q, %v: want the connection closed without an answer", b, err)
		}
		i := waitInfo(t, lg, func(i *streaminfo.Info) bool { return i.UpstreamCluster == "BlackHoleCluster" })
		want := "NR: no listener for 10.77.0.20:80 and the outbound traffic policy is REGISTRY_ONLY (BlackHoleCluster)"
		if i.LucidError != want || i.Flags&streaminfo.NoRouteFound == 0 {
			t.Fatalf("access log: flags %v, %q; want NR, %q", i.Flags, i.LucidError, want)
		}
	})
	t.Run("a connection to the inbound capture port itself is refused, not looped", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", "10.77.0.1:15006", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Fatalf("read %q, %v: want the connection closed", b, err)
		}
		waitInfo(t, lg, func(i *streaminfo.Info) bool {
			return i.Direction == "inbound" && i.UpstreamCluster == "BlackHoleCluster"
		})
	})
}

func newCaptureProxy(t *testing.T, lg *infoLog) *Proxy {
	t.Helper()
	p := observedProxy(t, "10.77.0.1", forward.Options{ConnectionObservers: []func(*streaminfo.Info){lg.observe}}) // tcp_test.go
	p.opts.Capture = true                                                                                          // read by the first Apply
	return p
}

// asApp runs f on a thread whose sockets belong to uid 1000 (the captured app).
func asApp[T any](f func() T) T {
	ch := make(chan T, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Setfsuid(appUID); err != nil {
			panic(err)
		}
		ch <- f()
	}()
	return <-ch
}

func appDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	r := asApp(func() res {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		return res{c, err}
	})
	if r.err != nil {
		t.Fatalf("dial %s as the app: %v", addr, r.err)
	}
	return r.c
}

// appGet is a GET whose connection the app makes (no proxy setting).
func appGet(t *testing.T, url string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) { return appDial(t, addr), nil }}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func roundTrip(t *testing.T, c net.Conn, msg string, n int) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// remoteEcho writes each connection's peer address and closes it; the count is of accepts.
func remoteEcho(t *testing.T, addr string) func() int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := make(chan int, 1)
	n <- 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- <-n + 1
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			_ = c.Close()
		}
	}()
	return func() int { v := <-n; n <- v; return v }
}
