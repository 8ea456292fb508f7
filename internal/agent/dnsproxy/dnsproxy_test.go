package dnsproxy

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Addresses: 127.0.95.0/24 (the proxy on .1, the upstream resolver on .2).

// upstream is a resolver that knows one name; it counts the queries it gets.
func upstream(t *testing.T) (addr string, queries *atomic.Int32) {
	t.Helper()
	queries = new(atomic.Int32)
	pc, err := net.ListenPacket("udp", "127.0.95.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		queries.Add(1)
		resp := new(dns.Msg)
		resp.SetReply(req)
		if req.Question[0].Name == "external.example.org." && req.Question[0].Qtype == dns.TypeA {
			resp.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "external.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.99")}}
		} else {
			resp.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(resp)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String(), queries
}

// start runs a proxy for namespace "default" and returns its address.
func start(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	o.Addr = "127.0.95.1:0"
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	o.Search = []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	o.Timeout = 2 * time.Second
	s := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(a net.Addr) { addrc <- a.String() })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, addr
}

// meshTable: a Kubernetes Service, a ServiceEntry with an auto-allocated address, a
// wildcard ServiceEntry with an address, a Service in another namespace.
func meshTable() nds.Table {
	alloc := nds.AutoAllocate([]string{"default/db.example.com"})
	return nds.Table{
		"reviews.default.svc.cluster.local": {IPs: []netip.Addr{netip.MustParseAddr("10.96.0.20")}, Registry: nds.RegistryKubernetes, ShortName: "reviews", Namespace: "default"},
		"ratings.prod.svc.cluster.local":    {IPs: []netip.Addr{netip.MustParseAddr("10.96.0.30"), netip.MustParseAddr("fd00::30")}, Registry: nds.RegistryKubernetes, ShortName: "ratings", Namespace: "prod"},
		"db.example.com":                    {IPs: []netip.Addr{alloc["default/db.example.com"]}, Registry: nds.RegistryExternal},
		"*.wild.example.com":                {IPs: []netip.Addr{netip.MustParseAddr("192.0.2.7")}, Registry: nds.RegistryExternal},
	}
}

func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := (&dns.Client{Net: network, Timeout: 3 * time.Second}).Exchange(req, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return resp
}

// answers renders the answer section as "name TYPE value" lines.
func answers(m *dns.Msg) string {
	var out []string
	for _, rr := range m.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[0]+" "+f[3]+" "+f[4])
	}
	return strings.Join(out, "; ")
}

func TestNamesAsKubernetesClientsAskThem(t *testing.T) {
	up, upQueries := upstream(t)
	s, addr := start(t, Options{Upstreams: []string{up}})
	if resp := query(t, "udp", addr, "reviews.default.svc.cluster.local", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("before the name table: rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	s.Update(meshTable())
	if !s.Ready() {
		t.Fatal("not ready after Update")
	}
	dbAddr := nds.AutoAllocate([]string{"default/db.example.com"})["default/db.example.com"].String()
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"reviews", dns.TypeA, "reviews. A 10.96.0.20"},
		{"reviews.default", dns.TypeA, "reviews.default. A 10.96.0.20"},
		{"reviews.default.svc", dns.TypeA, "reviews.default.svc. A 10.96.0.20"},
		{"reviews.default.svc.cluster.local", dns.TypeA, "reviews.default.svc.cluster.local. A 10.96.0.20"},
		{"REVIEWS.Default.svc.cluster.local", dns.TypeA, "reviews.default.svc.cluster.local. A 10.96.0.20"},
		// The resolver's search expansion: "reviews.default" asked with the first search domain.
		{"reviews.default.default.svc.cluster.local", dns.TypeA,
			"reviews.default.default.svc.cluster.local. CNAME reviews.default.; reviews.default. A 10.96.0.20"},
		{"ratings.prod", dns.TypeA, "ratings.prod. A 10.96.0.30"},
		{"ratings.prod.svc.cluster.local", dns.TypeAAAA, "ratings.prod.svc.cluster.local. AAAA fd00::30"},
		{"db.example.com", dns.TypeA, "db.example.com. A " + dbAddr},
		{"db.example.com.default.svc.cluster.local", dns.TypeA, "db.example.com.default.svc.cluster.local. CNAME db.example.com.; db.example.com. A " + dbAddr},
		{"a.b.wild.example.com", dns.TypeA, "a.b.wild.example.com. A 192.0.2.7"},
		// Known name, no IPv6 address: NOERROR with no answer (not NXDOMAIN).
		{"reviews.default.svc.cluster.local", dns.TypeAAAA, ""},
	} {
		for _, network := range []string{"udp", "tcp"} {
			resp := query(t, network, addr, tc.name, tc.qtype)
			if resp.Rcode != dns.RcodeSuccess || !resp.Authoritative || answers(resp) != tc.want {
				t.Errorf("%s %s %s: rcode %s aa=%v answers %q, want NOERROR aa %q",
					network, tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[resp.Rcode], resp.Authoritative, answers(resp), tc.want)
			}
		}
	}
	if n := upQueries.Load(); n != 0 {
		t.Errorf("%d queries for mesh names went upstream", n)
	}
	// Not the mesh's: forwarded, and the upstream's answer returned as is.
	if resp := query(t, "udp", addr, "external.example.org", dns.TypeA); answers(resp) != "external.example.org. A 192.0.2.99" || resp.Authoritative {
		t.Errorf("forwarded query: %v", resp)
	}
	for _, name := range []string{"ratings", "nowhere.example.org"} { // ratings is in another namespace
		if resp := query(t, "udp", addr, name, dns.TypeA); resp.Rcode != dns.RcodeNameError {
			t.Errorf("%s: rcode %s, want the upstream's NXDOMAIN", name, dns.RcodeToString[resp.Rcode])
		}
	}
	if resp := query(t, "udp", addr, "reviews.default.svc.cluster.local", dns.TypeMX); resp.Rcode != dns.RcodeNameError {
		t.Errorf("MX of a mesh name: rcode %s, want the upstream's answer", dns.RcodeToString[resp.Rcode])
	}
	if upQueries.Load() != 4 {
		t.Errorf("upstream got %d queries, want 4", upQueries.Load())
	}
}

func TestUpstreamDown(t *testing.T) {
	// A port nobody listens on: UDP gets ICMP port unreachable at once.
	pc, err := net.ListenPacket("udp", "127.0.95.3:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	s, addr := start(t, Options{Upstreams: []string{dead}})
	s.Update(meshTable())
	if resp := query(t, "udp", addr, "external.example.org", dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("upstream down: rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if resp := query(t, "udp", addr, "reviews", dns.TypeA); answers(resp) != "reviews. A 10.96.0.20" {
		t.Errorf("mesh names still answered: %v", resp)
	}
}

// FuzzAnswer: any message that parses gets a reply that packs; nothing panics.
func FuzzAnswer(f *testing.F) {
	for _, name := range []string{"reviews.", "reviews.default.default.svc.cluster.local.", "x.wild.example.com.", "."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		b, _ := m.Pack()
		f.Add(b)
	}
	s := New(Options{Namespace: "default", Search: []string{"default.svc.cluster.local", "svc.cluster.local"}})
	s.Update(meshTable())
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if req.Unpack(b) != nil {
			return
		}
		resp := s.answer(req, func(req *dns.Msg) *dns.Msg { return failure(req, dns.RcodeServerFailure) })
		resp.Truncate(maxSize("udp", req))
		if _, err := resp.Pack(); err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, resp)
		}
	})
}
