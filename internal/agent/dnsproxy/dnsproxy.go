// Package dnsproxy is the agent's DNS proxy (Istio's ISTIO_META_DNS_CAPTURE): with DNS
// capture on, the pod's capture rules send its DNS queries (UDP and TCP port 53) to
// 127.0.0.1:15053, where this server answers A/AAAA queries for every host of the name table
// the control plane sends (NDS, internal/contract/nds: Kubernetes Services and
// ServiceEntries, auto-allocated addresses included) and forwards everything else to the
// resolvers of /etc/resolv.conf. The agent's own queries to those resolvers are not captured
// (the rules exclude the proxy's uid 1337).
//
//	app ──► :53 ──(iptables)──► :15053 dnsproxy ── name in the table? ──► answer
//	                                          └── otherwise ──► upstream resolver
//
// Names are answered as Kubernetes clients ask them: the Service FQDN
// (reviews.default.svc.cluster.local), reviews.default, reviews.default.svc, and reviews in
// the proxy's own namespace, and any of them with a search domain of resolv.conf appended
// (the resolver's search expansion), which is answered with a CNAME to the name the client
// meant, as Istio does.
package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/lucid-mesh/lucid/internal/contract/nds"
)

// Port is the DNS proxy's port (Istio's IstioAgentDNSListenerPort).
const Port = 15053

// ttl of the answers from the table (Istio's defaultTTLInSeconds).
const ttl = 30

// Options configure a Server. Zero values: Addr 127.0.0.1:15053, ClusterDomain
// cluster.local, Timeout 5 s, slog.Default() (the agent passes its "dns" logger).
type Options struct {
	Addr          string   // listen address, UDP and TCP
	Upstreams     []string // resolvers ("10.96.0.10:53"), tried in order
	Search        []string // resolv.conf search domains, in order
	Namespace     string   // the proxy's namespace: its Services answer to their short name
	ClusterDomain string
	Timeout       time.Duration // per upstream query
	Logger        *slog.Logger
}

// Server answers DNS from the name table and forwards the rest. Update may be called at any
// time, from any goroutine; queries see one table or the next, never a mix.
type Server struct {
	opts  Options
	log   *slog.Logger
	table atomic.Pointer[lookup]
}

// New returns a server; Run starts it.
func New(o Options) *Server {
	if o.Addr == "" {
		o.Addr = fmt.Sprintf("127.0.0.1:%d", Port)
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Server{opts: o, log: o.Logger}
}

// Update replaces the name table (an NDS push).
func (s *Server) Update(t nds.Table) {
	l := build(t, s.opts)
	first := s.table.Swap(l) == nil
	if first {
		s.log.Info("dns proxy: name table received; answering for the mesh's hosts", "hosts", len(t))
	}
}

// Ready reports whether a name table has arrived (before it, queries get SERVFAIL, as Istio's
// proxy answers, so that clients retry instead of caching a negative answer).
func (s *Server) Ready() bool { return s.table.Load() != nil }

// Run listens on Addr (UDP and TCP, one port) and serves until ctx ends. ready, if not nil,
// is called with the bound address once both sockets listen.
func (s *Server) Run(ctx context.Context, ready func(addr net.Addr)) error {
	pc, err := net.ListenPacket("udp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("dns proxy: %w", err)
	}
	// TCP on the same port as UDP (Addr may ask for any port: ":0").
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return fmt.Errorf("dns proxy: %w", err)
	}
	servers := []*dns.Server{
		{PacketConn: pc, Handler: s.handler("udp")},
		{Listener: ln, Handler: s.handler("tcp")},
	}
	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- srv.ActivateAndServe()
		}()
	}
	if ready != nil {
		ready(pc.LocalAddr())
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.ShutdownContext(shutdownCtx)
	}
	wg.Wait()
	if serveErr != nil {
		return fmt.Errorf("dns proxy: %w", serveErr)
	}
	return nil
}

func (s *Server) handler(network string) dns.Handler {
	client := &dns.Client{Net: network, Timeout: s.opts.Timeout}
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := s.answer(req, func(req *dns.Msg) *dns.Msg { return s.forward(client, req) })
		resp.Truncate(maxSize(network, req))
		_ = w.WriteMsg(resp)
	})
}

// answer is the reply to req: from the table, or from forward for names not in it.
func (s *Server) answer(req *dns.Msg, forward func(*dns.Msg) *dns.Msg) *dns.Msg {
	if len(req.Question) == 0 {
		return failure(req, dns.RcodeFormatError)
	}
	l := s.table.Load()
	if l == nil {
		return failure(req, dns.RcodeServerFailure)
	}
	q := req.Question[0]
	if answers, ok := l.lookup(strings.ToLower(q.Name), q.Qtype); ok {
		resp := new(dns.Msg)
		resp.SetReply(req)
		// Authoritative for the mesh's names. A known host with no address of the asked type
		// is NOERROR with no answer, never NXDOMAIN (a client asking A and AAAA in parallel
		// would take NXDOMAIN for the whole name).
		resp.Authoritative = true
		resp.RecursionAvailable = true
		resp.Answer = answers
		return resp
	}
	return forward(req)
}

// forward asks the upstream resolvers in order; SERVFAIL if none answers.
func (s *Server) forward(client *dns.Client, req *dns.Msg) *dns.Msg {
	var errs []error
	for _, up := range s.opts.Upstreams {
		resp, _, err := client.Exchange(req, up)
		if err == nil && resp != nil {
			return resp
		}
		errs = append(errs, fmt.Errorf("%s: %w", up, err))
	}
	if len(s.opts.Upstreams) == 0 {
		errs = append(errs, errors.New("no upstream resolver"))
	}
	s.log.Debug("dns proxy: no upstream answered", "name", req.Question[0].Name, "error", errors.Join(errs...))
	return failure(req, dns.RcodeServerFailure)
}

func failure(req *dns.Msg, rcode int) *dns.Msg {
	resp := new(dns.Msg)
	resp.SetRcode(req, rcode)
	return resp
}

// maxSize is the largest reply the client takes: its EDNS0 buffer, 512 bytes over UDP
// without EDNS0, 64 KiB over TCP.
func maxSize(network string, req *dns.Msg) int {
	if network == "tcp" {
		return dns.MaxMsgSize
	}
	if opt := req.IsEdns0(); opt != nil && opt.UDPSize() > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

// lookup is one name table, indexed for queries.
type lookup struct {
	names  map[string]entry // lowercase FQDN with the trailing dot → addresses
	search []string         // search domains, lowercase, with a trailing dot
}

type entry struct {
	v4, v6 []netip.Addr
}

func build(t nds.Table, o Options) *lookup {
	l := &lookup{names: make(map[string]entry, 2*len(t))}
	for _, s := range o.Search {
		s = strings.ToLower(strings.Trim(s, "."))
		if s != "" {
			l.search = append(l.search, s+".")
		}
	}
	svcSuffix := ".svc." + strings.Trim(o.ClusterDomain, ".")
	alts := map[string]entry{}
	for host, info := range t {
		var e entry
		for _, ip := range info.IPs {
			if ip.Is4() {
				e.v4 = append(e.v4, ip)
			} else {
				e.v6 = append(e.v6, ip)
			}
		}
		fqdn := strings.ToLower(strings.TrimSuffix(host, "."))
		l.names[fqdn+"."] = e
		// A Kubernetes Service also answers to name.namespace, name.namespace.svc and, in the
		// proxy's namespace, name.
		if info.Registry == nds.RegistryKubernetes && info.ShortName != "" && info.Namespace != "" &&
			fqdn == strings.ToLower(info.ShortName+"."+info.Namespace)+svcSuffix {
			short, ns := strings.ToLower(info.ShortName), strings.ToLower(info.Namespace)
			alts[short+"."+ns+"."] = e
			alts[short+"."+ns+".svc."] = e
			if ns == strings.ToLower(o.Namespace) {
				alts[short+"."] = e
			}
		}
	}
	for name, e := range alts {
		if _, taken := l.names[name]; !taken { // a real host of that name wins
			l.names[name] = e
		}
	}
	return l
}

// lookup answers an A or AAAA question for a name in the table: the name itself, a
// wildcard host covering it, or the name with a search domain appended (answered with a
// CNAME to the name the client meant). ok is false for names not in the table and for other
// query types: those go upstream, as in Istio.
func (l *lookup) lookup(name string, qtype uint16) (answers []dns.RR, ok bool) {
	if qtype != dns.TypeA && qtype != dns.TypeAAAA {
		return nil, false
	}
	target, e, ok := l.find(name)
	if !ok {
		for _, s := range l.search {
			if base, cut := strings.CutSuffix(name, "."+s); cut && base != "" {
				if target, e, ok = l.find(base + "."); ok {
					answers = append(answers, &dns.CNAME{
						Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
						Target: target,
					})
					break
				}
			}
		}
	}
	if !ok {
		return nil, false
	}
	if qtype == dns.TypeA {
		for _, ip := range e.v4 {
			answers = append(answers, &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: ip.AsSlice()})
		}
	} else {
		for _, ip := range e.v6 {
			answers = append(answers, &dns.AAAA{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: ip.AsSlice()})
		}
	}
	return answers, true
}

// find looks name up exactly, then as covered by a wildcard host ("*.example.com." covers
// "a.example.com." and "a.b.example.com."); the records carry the asked name.
func (l *lookup) find(name string) (string, entry, bool) {
	if e, ok := l.names[name]; ok {
		return name, e, true
	}
	for rest := name; ; {
		_, after, found := strings.Cut(rest, ".")
		if !found || after == "" {
			return "", entry{}, false
		}
		if e, ok := l.names["*."+after]; ok {
			return name, e, true
		}
		rest = after
	}
}
