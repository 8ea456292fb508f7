// Package capture tests transparent capture end to end in a private network namespace: the
// rules `lucid iptables` installs (internal/kube/iptables), a listener on the outbound
// capture port reading the original destination (internal/dataplane/origdst), and the DNS
// proxy (internal/agent/dnsproxy) reached through the DNS capture rules.
//
// The namespace has a veth interface 192.0.2.1/24 standing for the pod's network: a
// "remote" service at 192.0.2.10:80 and the pod's resolver at 192.0.2.53:53. Packets that
// would really leave for them are rejected at once (filter OUTPUT, which sees the address
// after the capture's NAT: a TCP reset, and EPERM for UDP; only those two addresses, never
// the pod's own), so traffic that is not captured
// fails fast instead of hanging.
package capture

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/lucid-mesh/lucid/internal/agent/dnsproxy"
	"github.com/lucid-mesh/lucid/internal/contract/nds"
	"github.com/lucid-mesh/lucid/internal/dataplane/origdst"
	"github.com/lucid-mesh/lucid/internal/kube/iptables"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

const (
	remote   = "192.0.2.10:80"
	resolver = "192.0.2.53"
	proxyUID = 1337
)

func TestCaptureNetns(t *testing.T) {
	netns.Run(t, "TestCaptureChild", "iptables")
}

func TestCaptureChild(t *testing.T) {
	netns.Child(t)
	netns.Sh(t, `ip link add pod0 type veth peer name peer0 && ip addr add 192.0.2.1/24 dev pod0 && ip link set pod0 up && ip link set peer0 up &&
iptables -A OUTPUT -d 192.0.2.10 -p tcp -j REJECT --reject-with tcp-reset &&
iptables -A OUTPUT -d 192.0.2.53 -p udp -j REJECT --reject-with icmp-port-unreachable`)

	// The injector's default rules with DNS capture to the pod's resolver.
	ctx := context.Background()
	b, plan := applyRules(t, func(c *iptables.Config) {
		c.RedirectDNS, c.DNSServers = true, []netip.Addr{netip.MustParseAddr(resolver)}
	})

	outbound, err := net.Listen("tcp", "127.0.0.1:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer outbound.Close()

	t.Run("the app's connection reaches 15001 with its original destination", func(t *testing.T) {
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := outbound.Accept(); err == nil {
				accepted <- c
			}
		}()
		conn, err := net.Dial("tcp", remote)
		if err != nil {
			t.Fatalf("dial %s as the app: %v", remote, err)
		}
		defer conn.Close()
		s := <-accepted
		defer s.Close()
		dst, err := origdst.OriginalDst(s)
		if err != nil {
			t.Fatal(err)
		}
		if dst.String() != remote {
			t.Errorf("original destination %s, want %s", dst, remote)
		}
	})

	t.Run("the proxy's own connection is not captured", func(t *testing.T) {
		_, err := asUID(proxyUID, func() (net.Conn, error) { return net.Dial("tcp", remote) })
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s as uid %d: %v, want the reset of the real network (not captured)", remote, proxyUID, err)
		}
	})

	// The DNS proxy on 15053 and, behind it, the pod's "real" resolver on loopback.
	upstream := fakeResolver(t, "127.0.97.53:53")
	proxy := dnsproxy.New(dnsproxy.Options{
		Addr: "127.0.0.1:15053", Upstreams: []string{upstream},
		Namespace: "default", Search: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
	})
	proxy.Update(nds.Table{"reviews.default.svc.cluster.local": {
		IPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Registry: nds.RegistryKubernetes, ShortName: "reviews", Namespace: "default",
	}})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	ready := make(chan struct{})
	// The proxy's sockets belong to uid 1337, as the agent's do: its replies are then put in
	// the app flow's conntrack zone and un-NATed (Istio's CT --zone rules).
	go func() {
		if err := becomeUID(proxyUID); err != nil {
			done <- err
			return
		}
		done <- proxy.Run(runCtx, func(net.Addr) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	t.Run("the app's DNS queries reach the proxy on 15053", func(t *testing.T) {
		for _, network := range []string{"udp", "tcp"} {
			resp, err := lookup(network, "reviews", dns.TypeA)
			if err != nil {
				t.Fatalf("%s: %v", network, err)
			}
			if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "10.96.0.20" {
				t.Errorf("%s reviews: %v", network, resp)
			}
			// A name outside the mesh: forwarded by the proxy to the upstream resolver. (Over
			// UDP only: this test's forwarder runs as root, and the rules capture root's TCP to
			// port 53 as the app's; the real agent runs as 1337.)
			if network == "tcp" {
				continue
			}
			resp, err = lookup(network, "external.example.org", dns.TypeA)
			if err != nil {
				t.Fatalf("%s: %v", network, err)
			}
			if len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.99" {
				t.Errorf("%s external.example.org: %v", network, resp)
			}
		}
	})

	t.Run("the proxy's own DNS queries are not captured", func(t *testing.T) {
		_, err := asUID(proxyUID, func() (net.Conn, error) {
			_, err := lookup("udp", "reviews", dns.TypeA)
			return nil, err
		})
		if !errors.Is(err, syscall.EPERM) {
			t.Fatalf("query as uid %d: %v, want the real network's rejection", proxyUID, err)
		}
	})

	if _, err := iptables.Cleanup(ctx, b, plan); err != nil {
		t.Fatal(err)
	}
	t.Run("after cleanup nothing is captured", func(t *testing.T) {
		if _, err := net.Dial("tcp", remote); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s after cleanup: %v, want the reset of the real network", remote, err)
		}
	})
}

// lookup asks the pod's resolver (as an app does, from resolv.conf).
func lookup(network, name string, qtype uint16) (*dns.Msg, error) {
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := (&dns.Client{Net: network, Timeout: 3 * time.Second}).Exchange(req, net.JoinHostPort(resolver, "53"))
	return resp, err
}

// asUID runs f on an OS thread whose file-system uid and gid are uid: the sockets f creates
// belong to uid, which is what iptables' owner match looks at. The thread is discarded
// afterwards (it stays locked), so no other goroutine runs with that identity.
func asUID(uid int, f func() (net.Conn, error)) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		if err := becomeUID(uid); err != nil {
			ch <- result{nil, err}
			return
		}
		c, err := f()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// becomeUID locks the calling goroutine to its OS thread for good (the thread exits with the
// goroutine) and sets that thread's file-system uid and gid: sockets created on it belong to
// uid. setfsuid is a per-thread system call; the rest of the process keeps its identity.
func becomeUID(uid int) error {
	runtime.LockOSThread()
	if err := unix.Setfsgid(uid); err != nil {
		return err
	}
	return unix.Setfsuid(uid)
}

// fakeResolver answers external.example.org with 192.0.2.99 and NXDOMAIN otherwise.
func fakeResolver(t *testing.T, addr string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		if req.Question[0].Name == "external.example.org." {
			resp.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "external.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.99")}}
		} else {
			resp.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(resp)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return addr
}

// applyRules installs the injector's default rule set (as istio-init runs it), changed by
// edit, in the test's namespace.
func applyRules(t *testing.T, edit func(*iptables.Config)) (iptables.Backend, iptables.Plan) {
	t.Helper()
	c := iptables.Default()
	c.ExcludeInboundPort = "15090,15021,15020"
	if edit != nil {
		edit(&c)
	}
	plan, err := iptables.NewPlan(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := iptables.DetectBackend(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iptables.Apply(ctx, b, plan); err != nil {
		t.Fatal(err)
	}
	return b, plan
}
