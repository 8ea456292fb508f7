package up

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// upstream is a resolver of the machine (UDP and TCP): it knows one name.
func upstream(t *testing.T) string {
	t.Helper()
	pc, ln, err := listenUDPAndTCP("127.0.0.1:0") // the UDP port picked may be taken for TCP: tries others
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		if req.Question[0].Name != "db.example.com." {
			_ = w.WriteMsg(resp.SetRcode(req, dns.RcodeNameError))
			return
		}
		resp.SetReply(req)
		rr, _ := dns.NewRR("db.example.com. 60 IN A 192.0.2.7")
		resp.Answer = []dns.RR{rr}
		_ = w.WriteMsg(resp)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started, done := make(chan struct{}), make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe(); close(done) }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	}
	return pc.LocalAddr().String()
}

func ask(t *testing.T, network, server, name string) *dns.Msg {
	t.Helper()
	req := new(dns.Msg).SetQuestion(name, dns.TypeA)
	resp, _, err := (&dns.Client{Net: network}).Exchange(req, server)
	if err != nil {
		t.Fatalf("%s %s from %s: %v", network, name, server, err)
	}
	return resp
}

func TestClusterDNSForwardsNamesOutsideTheCluster(t *testing.T) {
	c, err := startClusterDNS("127.0.0.1:0", []string{upstream(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, network := range []string{"udp", "tcp"} {
		resp := ask(t, network, c.addr(), "db.example.com.")
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
			t.Errorf("%s db.example.com: %v", network, resp)
		}
		if resp := ask(t, network, c.addr(), "nothing.example.com."); resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s nothing.example.com: %s, want the upstream's NXDOMAIN", network, dns.RcodeToString[resp.Rcode])
		}
		// A search-path expansion the pod's agent did not know: no such name in the cluster.
		if resp := ask(t, network, c.addr(), "db.example.com.default.svc.cluster.local."); resp.Rcode != dns.RcodeNameError || !resp.Authoritative {
			t.Errorf("%s db.example.com.default.svc.cluster.local: %v, want authoritative NXDOMAIN", network, resp)
		}
	}
}

func TestClusterDNSWithoutResolversAnswersNXDOMAIN(t *testing.T) {
	// No resolver on the machine (its own address would be this server: left out).
	c, err := startClusterDNS("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if resp := ask(t, "udp", c.addr(), "db.example.com."); resp.Rcode != dns.RcodeNameError {
		t.Fatalf("db.example.com: %s, want NXDOMAIN at once", dns.RcodeToString[resp.Rcode])
	}
}

func TestClusterDNSSaysSERVFAILWhenTheResolversFail(t *testing.T) {
	// A resolver that is gone: nothing listens on its port.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := pc.LocalAddr().String()
	_ = pc.Close()
	c, err := startClusterDNS("127.0.0.1:0", []string{gone})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if resp := ask(t, "udp", c.addr(), "db.example.com."); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("db.example.com: %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}
