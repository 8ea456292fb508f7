package iptables

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Istio's chains.
const (
	ChainInbound    = "ISTIO_INBOUND"
	ChainInRedirect = "ISTIO_IN_REDIRECT"
	ChainOutput     = "ISTIO_OUTPUT"
	ChainRedirect   = "ISTIO_REDIRECT"
	ChainOutputDNS  = "ISTIO_OUTPUT_DNS"
	ChainDivert     = "ISTIO_DIVERT"
	ChainTProxy     = "ISTIO_TPROXY"
)

// chainPrefix names every chain the rule set owns: Cleanup removes ISTIO_* chains (and the
// jumps to them) whatever their rules, so a set installed with other flags goes too.
const chainPrefix = "ISTIO_"

// Rule is one iptables rule: Args are the match and target ("-p", "tcp", "-j", "RETURN").
// Insert > 0 inserts at that position (-I CHAIN n) instead of appending (-A CHAIN).
type Rule struct {
	Table  string
	Chain  string
	Insert int
	Args   []string
}

// Spec is the rule in iptables' command form without the table: "-A CHAIN args…" (or
// "-I CHAIN n args…").
func (r Rule) Spec() []string {
	op := []string{"-A", r.Chain}
	if r.Insert > 0 {
		op = []string{"-I", r.Chain, strconv.Itoa(r.Insert)}
	}
	return append(op, r.Args...)
}

// target is the rule's jump target (-j or -g), "" without one.
func (r Rule) target() string {
	for i := 0; i+1 < len(r.Args); i++ {
		if r.Args[i] == "-j" || r.Args[i] == "-g" {
			return r.Args[i+1]
		}
	}
	return ""
}

// Plan is the rule set for one configuration, in Istio's order.
type Plan struct {
	Rules []Rule
	// Routes: TPROXY mode's policy routing (`ip rule add fwmark MARK lookup TABLE`,
	// `ip route add local default dev lo table TABLE`); zero when not needed.
	RouteMark, RouteTable uint32
}

// tables are the tables a plan may touch, in the order iptables-restore gets them (Istio's,
// sorted by name).
var tables = []string{"mangle", "nat", "raw"}

func builtin(chain string) bool {
	switch chain {
	case "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING":
		return true
	}
	return false
}

// Chains returns the chains the plan creates in table, in order of first use (as rule
// chains first, then as jump targets, as Istio's builder declares them).
func (p Plan) Chains(table string) []string {
	var out []string
	add := func(c string) {
		if c != "" && !builtin(c) && strings.HasPrefix(c, chainPrefix) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, r := range p.Rules {
		if r.Table == table {
			add(r.Chain)
		}
	}
	for _, r := range p.Rules {
		if r.Table == table {
			add(r.target())
		}
	}
	return out
}

// Restore is the plan as one iptables-restore input (for `--noflush`): per table, the new
// chains then the rules, each table ended by COMMIT.
func (p Plan) Restore() string {
	var b strings.Builder
	for _, t := range tables {
		chains := p.Chains(t)
		var rules []string
		for _, r := range p.Rules {
			if r.Table == t {
				rules = append(rules, strings.Join(r.Spec(), " "))
			}
		}
		if len(rules) == 0 && len(chains) == 0 {
			continue
		}
		fmt.Fprintf(&b, "* %s\n", t)
		for _, c := range chains {
			fmt.Fprintf(&b, "-N %s\n", c)
		}
		for _, r := range rules {
			b.WriteString(r + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// Rules returns the IPv4 rule set that Istio installs for c, in iptables-restore form
// ("* nat", the chains, the rules, "COMMIT" per table): what `lucid iptables --dry-run`
// prints.
func Rules(c Config) ([]string, error) {
	p, err := NewPlan(c)
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(p.Restore(), "\n"), "\n"), nil
}

// NewPlan validates c and returns Istio's IPv4 rule set for it (istio-iptables'
// capture.Run: the same rules, in the same order, for the flags Lucid supports).
func NewPlan(c Config) (Plan, error) {
	if err := c.Validate(); err != nil {
		return Plan{}, err
	}
	if c.ProxyGID == 0 {
		c.ProxyGID = c.ProxyUID
	}
	b := &builder{}
	tproxy := c.Mode == ModeTProxy
	uid, gid := strconv.FormatUint(uint64(c.ProxyUID), 10), strconv.FormatUint(uint64(c.ProxyGID), 10)
	mark := strconv.FormatUint(uint64(c.TProxyMark), 10)
	outMark := strconv.Itoa(OutboundMark)
	tunnel := strconv.Itoa(int(c.InboundTunnelPort))
	dnsPort := strconv.Itoa(DNSPort)
	const loopback = "127.0.0.1/32"

	excludedIfaces, _ := parseNames(c.ExcludeIfaces)
	kubeVirt, _ := parseNames(c.KubeVirtIfaces)
	excludedCIDRs, _ := ParseCIDRs(c.ExcludeOutboundIPs)
	includeAll := strings.TrimSpace(c.IncludeOutboundIPs) == "*"
	var includedCIDRs []string
	includesLoopback := false
	if !includeAll {
		ps, _ := ParseCIDRs(c.IncludeOutboundIPs)
		for _, p := range ps {
			if p.Addr().Is4() {
				includedCIDRs = append(includedCIDRs, p.String())
				includesLoopback = includesLoopback || p.Addr().IsLoopback()
			}
		}
	}
	var dnsServers []string
	for _, a := range c.DNSServers {
		if a.Unmap().Is4() {
			dnsServers = append(dnsServers, a.Unmap().String()+"/32")
		}
	}
	// As Istio: DNS capture without a resolver to capture (and not all of port 53) is off.
	redirectDNS := c.RedirectDNS && (c.CaptureAllDNS || len(dnsServers) > 0)

	// Interfaces never captured, and kube-virt interfaces short-circuited.
	for _, i := range excludedIfaces {
		b.add("nat", "PREROUTING", "-i", i, "-j", "RETURN")
		b.add("nat", "OUTPUT", "-o", i, "-j", "RETURN")
	}
	if tproxy {
		for _, i := range excludedIfaces {
			b.add("mangle", "PREROUTING", "-i", i, "-j", "RETURN")
			b.add("mangle", "OUTPUT", "-o", i, "-j", "RETURN")
		}
	}
	for _, i := range kubeVirt {
		b.insert("nat", "PREROUTING", 1, "-i", i, "-j", "RETURN")
	}

	b.add("nat", ChainInbound, "-p", "tcp", "--dport", tunnel, "-j", "RETURN")
	b.add("nat", ChainRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(int(c.OutboundPort)))
	b.add("nat", ChainInRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(int(c.InboundPort)))

	// Inbound.
	if in := strings.TrimSpace(c.IncludeInboundPort); in != "" {
		table := "nat"
		if tproxy {
			table = "mangle"
			b.add("mangle", ChainDivert, "-j", "MARK", "--set-mark", mark)
			b.add("mangle", ChainDivert, "-j", "ACCEPT")
			b.add("mangle", ChainTProxy, "!", "-d", loopback, "-p", "tcp", "-j", "TPROXY",
				"--tproxy-mark", mark+"/0xffffffff", "--on-port", strconv.Itoa(int(c.InboundPort)))
		}
		b.add(table, "PREROUTING", "-p", "tcp", "-j", ChainInbound)
		if in == "*" {
			excluded, _ := ParsePorts(c.ExcludeInboundPort)
			for _, p := range excluded {
				b.add(table, ChainInbound, "-p", "tcp", "--dport", port(p), "-j", "RETURN")
			}
			if tproxy {
				b.add("mangle", ChainInbound, "-p", "tcp", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", ChainDivert)
				b.add("mangle", ChainInbound, "-p", "tcp", "-j", ChainTProxy)
			} else {
				b.add("nat", ChainInbound, "-p", "tcp", "-j", ChainInRedirect)
			}
		} else {
			included, _ := ParsePorts(in)
			for _, p := range included {
				if tproxy {
					b.add("mangle", ChainInbound, "-p", "tcp", "--dport", port(p), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", ChainDivert)
					b.add("mangle", ChainInbound, "-p", "tcp", "--dport", port(p), "-j", ChainTProxy)
				} else {
					b.add("nat", ChainInbound, "-p", "tcp", "--dport", port(p), "-j", ChainInRedirect)
				}
			}
		}
	}

	// Outbound.
	b.add("nat", "OUTPUT", "-j", ChainOutput)
	excludedOut, _ := ParsePorts(c.ExcludeOutPorts)
	for _, p := range excludedOut {
		b.add("nat", ChainOutput, "-p", "tcp", "--dport", port(p), "-j", "RETURN")
		b.add("nat", ChainOutput, "-p", "udp", "--dport", port(p), "-j", "RETURN")
	}
	// 127.0.0.6 is the source of the inbound passthrough cluster and of app probes.
	b.add("nat", ChainOutput, "-o", "lo", "-s", "127.0.0.6/32", "-j", "RETURN")
	for _, owner := range []struct{ flag, id string }{{"--uid-owner", uid}, {"--gid-owner", gid}} {
		// The proxy's own calls to the pod's address over loopback (app → own service VIP →
		// outbound sidecar → inbound sidecar) go through the inbound path. With DNS capture the
		// uid rule skips port 53: the agent's DNS proxy talks to the resolver directly.
		if redirectDNS && owner.flag == "--uid-owner" {
			b.add("nat", ChainOutput, "-o", "lo", "!", "-d", loopback, "-p", "tcp", "-m", "multiport", "!", "--dports", "53,"+tunnel,
				"-m", "owner", owner.flag, owner.id, "-j", ChainInRedirect)
		} else {
			b.add("nat", ChainOutput, "-o", "lo", "!", "-d", loopback, "-p", "tcp", "!", "--dport", tunnel,
				"-m", "owner", owner.flag, owner.id, "-j", ChainInRedirect)
		}
		// The app's own loopback traffic is not captured, unless -i names loopback; with DNS
		// capture, TCP DNS to a resolver on loopback still is.
		if !includesLoopback {
			if redirectDNS {
				b.add("nat", ChainOutput, "-o", "lo", "-p", "tcp", "!", "--dport", "53", "-m", "owner", "!", owner.flag, owner.id, "-j", "RETURN")
			} else {
				b.add("nat", ChainOutput, "-o", "lo", "-m", "owner", "!", owner.flag, owner.id, "-j", "RETURN")
			}
		}
		// The proxy's own traffic is never captured (no loops), TCP and UDP alike.
		b.add("nat", ChainOutput, "-m", "owner", owner.flag, owner.id, "-j", "RETURN")
	}

	if redirectDNS {
		planDNS(b, uid, gid, dnsPort, dnsServers, c.CaptureAllDNS)
	}

	b.add("nat", ChainOutput, "-d", loopback, "-j", "RETURN")
	for _, p := range excludedCIDRs {
		if p.Addr().Is4() {
			b.add("nat", ChainOutput, "-d", p.String(), "-j", "RETURN")
		}
	}
	includedOut, _ := ParsePorts(c.IncludeOutPorts)
	for _, p := range includedOut {
		b.add("nat", ChainOutput, "-p", "tcp", "--dport", port(p), "-j", ChainRedirect)
	}
	if includeAll {
		b.add("nat", ChainOutput, "-j", ChainRedirect)
		for _, i := range kubeVirt {
			b.insert("nat", "PREROUTING", 1, "-i", i, "-j", ChainRedirect)
		}
	} else {
		for _, cidr := range includedCIDRs {
			for _, i := range kubeVirt {
				b.insert("nat", "PREROUTING", 1, "-i", i, "-d", cidr, "-j", ChainRedirect)
			}
			b.add("nat", ChainOutput, "-d", cidr, "-j", ChainRedirect)
		}
	}

	if tproxy {
		// The mark TPROXY set is kept on the connection, so the replies of the inbound
		// sidecar's upstream connections are routed back to it (policy routing below).
		b.add("mangle", "PREROUTING", "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "CONNMARK", "--save-mark")
		b.add("mangle", "OUTPUT", "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", mark, "-j", "RETURN")
		for _, owner := range []struct{ flag, id string }{{"--uid-owner", uid}, {"--gid-owner", gid}} {
			b.add("mangle", "OUTPUT", "!", "-d", loopback, "-p", "tcp", "-o", "lo", "-m", "owner", owner.flag, owner.id, "-j", "MARK", "--set-mark", outMark)
		}
		b.add("mangle", "OUTPUT", "-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "CONNMARK", "--restore-mark")
		b.insert("mangle", ChainInbound, 1, "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "RETURN")
		b.insert("mangle", ChainInbound, 2, "-p", "tcp", "-s", "127.0.0.6/32", "-i", "lo", "-j", "RETURN")
		b.insert("mangle", ChainInbound, 3, "-p", "tcp", "-i", "lo", "-m", "mark", "!", "--mark", outMark, "-j", "RETURN")
	}

	p := Plan{Rules: b.rules}
	if tproxy && strings.TrimSpace(c.IncludeInboundPort) != "" {
		p.RouteMark, p.RouteTable = c.TProxyMark, c.TProxyRouteTable
	}
	return p, nil
}

// planDNS adds Istio's DNS capture: port 53 to the resolvers (or all of port 53) goes to the
// agent's DNS proxy, and UDP DNS is split into two conntrack zones (app ↔ agent, agent ↔
// resolver) so that the kernel does not confuse the two flows' entries.
func planDNS(b *builder, uid, gid, dnsPort string, servers []string, all bool) {
	b.add("raw", "OUTPUT", "-j", ChainOutputDNS)
	b.add("nat", ChainOutput, "-j", ChainOutputDNS)
	if all {
		b.add("nat", ChainOutputDNS, "-p", "tcp", "--dport", "53", "-j", "REDIRECT", "--to-ports", dnsPort)
		b.add("nat", ChainOutputDNS, "-p", "udp", "--dport", "53", "-j", "REDIRECT", "--to-port", dnsPort)
	} else {
		for _, s := range servers {
			b.add("nat", ChainOutputDNS, "-p", "tcp", "--dport", "53", "-d", s, "-j", "REDIRECT", "--to-ports", dnsPort)
		}
		for _, s := range servers {
			b.add("nat", ChainOutputDNS, "-p", "udp", "--dport", "53", "-d", s, "-j", "REDIRECT", "--to-port", dnsPort)
		}
	}
	for _, owner := range []struct{ flag, id string }{{"--uid-owner", uid}, {"--gid-owner", gid}} {
		b.add("raw", ChainOutputDNS, "-p", "udp", "--dport", "53", "-m", "owner", owner.flag, owner.id, "-j", "CT", "--zone", "1")
		b.add("raw", ChainOutputDNS, "-p", "udp", "--sport", dnsPort, "-m", "owner", owner.flag, owner.id, "-j", "CT", "--zone", "2")
	}
	b.add("raw", "PREROUTING", "-j", ChainInbound)
	if all {
		b.add("raw", ChainOutputDNS, "-p", "udp", "--dport", "53", "-j", "CT", "--zone", "2")
		b.add("raw", ChainInbound, "-p", "udp", "--sport", "53", "-j", "CT", "--zone", "1")
		return
	}
	for _, s := range servers {
		b.add("raw", ChainOutputDNS, "-p", "udp", "--dport", "53", "-d", s, "-j", "CT", "--zone", "2")
		b.add("raw", ChainInbound, "-p", "udp", "--sport", "53", "-s", s, "-j", "CT", "--zone", "1")
	}
}

type builder struct{ rules []Rule }

func (b *builder) add(table, chain string, args ...string) {
	b.rules = append(b.rules, Rule{Table: table, Chain: chain, Args: args})
}

func (b *builder) insert(table, chain string, pos int, args ...string) {
	b.rules = append(b.rules, Rule{Table: table, Chain: chain, Insert: pos, Args: args})
}

func port(p uint16) string { return strconv.Itoa(int(p)) }
