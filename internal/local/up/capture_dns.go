package up

import (
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Names in the pods of `lucid up --capture` resolve as in a Kubernetes pod with Istio's DNS
// capture on: the pod's resolv.conf names the cluster's resolver (here the bridge's
// address, port 53) with Kubernetes' search path and ndots:5; the pod's capture rules send
// every query for it to the agent's DNS proxy (15053), which answers the mesh's names from
// the control plane's name table and forwards the rest to that resolver. clusterDNS is the
// resolver, kube-dns's stand-in, running beside the control plane: it answers NXDOMAIN for
// the cluster domain's names (the mesh's were answered in the pod; no other exists) and
// forwards other names to the machine's resolvers.

// clusterDomain is the cluster's DNS domain (Kubernetes' default).
const clusterDomain = "cluster.local"

// upstreamTimeout bounds one question to one of the machine's resolvers.
const upstreamTimeout = 2 * time.Second

// clusterDNS serves DNS on the bridge's address, UDP and TCP.
type clusterDNS struct {
	upstreams []string // the machine's resolvers ("ip:port"), in order
	servers   []*dns.Server
	wg        sync.WaitGroup
}

// startClusterDNS listens on addr ("ip:53"; UDP and TCP on one port) and serves until close.
// Upstreams at addr itself are left out (they would be this server).
func startClusterDNS(addr string, upstreams []string) (*clusterDNS, error) {
	c := &clusterDNS{}
	for _, u := range upstreams {
		if u != addr {
			c.upstreams = append(c.upstreams, u)
		}
	}
	pc, ln, err := listenUDPAndTCP(addr)
	if err != nil {
		return nil, err
	}
	c.servers = []*dns.Server{
		{PacketConn: pc, Handler: c.handler("udp")},
		{Listener: ln, Handler: c.handler("tcp")},
	}
	started := make(chan struct{}, len(c.servers))
	for _, s := range c.servers {
		s.NotifyStartedFunc = func() { started <- struct{}{} }
		c.wg.Go(func() { _ = s.ActivateAndServe() })
	}
	for range c.servers {
		<-started // Shutdown refuses a server that has not started yet
	}
	return c, nil
}

// listenUDPAndTCP listens on addr with UDP and TCP on one port; for port 0 it tries a few
// ports, as the UDP port picked may be taken for TCP.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" || attempt == 4 {
			return nil, nil, err
		}
	}
}

// addr is where the server listens (UDP and TCP).
func (c *clusterDNS) addr() string { return c.servers[0].PacketConn.LocalAddr().String() }

func (c *clusterDNS) handler(network string) dns.Handler {
	client := &dns.Client{Net: network, Timeout: upstreamTimeout}
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		_ = w.WriteMsg(c.answer(req, func(req *dns.Msg, upstream string) (*dns.Msg, error) {
			resp, _, err := client.Exchange(req, upstream)
			return resp, err
		}))
	})
}

// answer is the reply to req: NXDOMAIN for the cluster domain's names and for everything
// when the machine has no resolver, else the first answer of the machine's resolvers
// (SERVFAIL when none answers).
func (c *clusterDNS) answer(req *dns.Msg, exchange func(*dns.Msg, string) (*dns.Msg, error)) *dns.Msg {
	resp := new(dns.Msg)
	if len(req.Question) != 1 {
		return resp.SetRcode(req, dns.RcodeFormatError)
	}
	name, domain := strings.ToLower(req.Question[0].Name), dns.Fqdn(clusterDomain)
	if name == domain || strings.HasSuffix(name, "."+domain) || len(c.upstreams) == 0 {
		resp.SetRcode(req, dns.RcodeNameError)
		resp.Authoritative = true
		resp.RecursionAvailable = true
		return resp
	}
	for _, up := range c.upstreams {
		if r, err := exchange(req, up); err == nil && r != nil {
			return r
		}
	}
	return resp.SetRcode(req, dns.RcodeServerFailure)
}

// close stops serving and waits for the servers to end.
func (c *clusterDNS) close() {
	for _, s := range c.servers {
		_ = s.Shutdown()
	}
	c.wg.Wait()
}
