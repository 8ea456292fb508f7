package cli

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/kube/iptables"
)

func init() { register(newIptablesCmd) }

func newIptablesCmd() *cobra.Command {
	c := iptables.Default()
	var (
		dryRun, cleanup bool
		logLevel        string
		uid, gid        uint32
		outP, inP       uint16
		force           string
		resolvConf      string
	)
	cmd := &cobra.Command{
		Use:   "iptables",
		Short: "Install a pod's traffic-capture rules in the current network namespace (the istio-init container)",
		Long: `The istio-init container of an injected pod runs this command with istio-iptables' flags.
It installs Istio's capture rules (ISTIO_INBOUND, ISTIO_IN_REDIRECT, ISTIO_OUTPUT,
ISTIO_REDIRECT; TPROXY's mangle rules and policy routes with -m TPROXY; DNS capture to the
agent's port 15053 with --redirect-dns or ISTIO_META_DNS_CAPTURE=true) in the current network
namespace with one iptables-restore input. A second run with the same flags changes nothing;
a run that fails part-way removes what it wrote. --cleanup removes the rule set again;
--dry-run only validates the flags and prints the rules. Needs NET_ADMIN (and NET_RAW for
iptables-legacy).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.ProxyUID, c.OutboundPort, c.InboundPort = uid, outP, inP
			c.ProxyGID = uid
			if cmd.Flags().Changed("proxy-gid") {
				c.ProxyGID = gid
			}
			if !cmd.Flags().Changed("redirect-dns") {
				if v, ok := os.LookupEnv("ISTIO_META_DNS_CAPTURE"); ok {
					on, err := strconv.ParseBool(v)
					if err != nil {
						return fmt.Errorf("iptables: ISTIO_META_DNS_CAPTURE=%q: not a boolean", v)
					}
					c.RedirectDNS = on
				}
			}
			out := cmd.OutOrStdout()
			if c.RedirectDNS && !c.CaptureAllDNS {
				servers, err := resolvers(resolvConf)
				if err != nil {
					return fmt.Errorf("iptables: --redirect-dns: %w", err)
				}
				c.DNSServers = servers
				if !hasIPv4(servers) {
					fmt.Fprintf(cmd.ErrOrStderr(), "iptables: --redirect-dns: %s names no IPv4 resolver and --capture-all-dns is off: DNS is not captured\n", resolvConf)
				}
			}
			plan, err := iptables.NewPlan(c)
			if err != nil {
				return fmt.Errorf("iptables: %w", err)
			}
			if dryRun {
				fmt.Fprint(out, plan.Restore())
				return nil
			}
			return applyCapture(cmd, out, plan, force, cleanup)
		},
	}
	f := cmd.Flags()
	f.Uint16VarP(&outP, "envoy-port", "p", c.OutboundPort, "outbound capture port")
	f.Uint16VarP(&inP, "inbound-capture-port", "z", c.InboundPort, "inbound capture port")
	f.Uint16VarP(&c.InboundTunnelPort, "inbound-tunnel-port", "e", c.InboundTunnelPort, "HBONE tunnel port, never captured inbound")
	f.Uint32VarP(&uid, "proxy-uid", "u", c.ProxyUID, "the proxy's uid: its traffic is not captured")
	f.Uint32VarP(&gid, "proxy-gid", "g", c.ProxyGID, "the proxy's gid (default: the uid)")
	f.StringVarP(&c.Mode, "istio-inbound-interception-mode", "m", c.Mode, "REDIRECT or TPROXY")
	f.Uint32VarP(&c.TProxyMark, "istio-inbound-tproxy-mark", "t", c.TProxyMark, "TPROXY: the mark of captured packets")
	f.Uint32VarP(&c.TProxyRouteTable, "istio-inbound-tproxy-route-table", "r", c.TProxyRouteTable, "TPROXY: the routing table that delivers marked packets locally")
	f.StringVarP(&c.IncludeOutboundIPs, "istio-service-cidr", "i", c.IncludeOutboundIPs, `outbound CIDRs to capture ("*" for all)`)
	f.StringVarP(&c.ExcludeOutboundIPs, "istio-service-exclude-cidr", "x", "", "outbound CIDRs never captured")
	f.StringVarP(&c.IncludeInboundPort, "istio-inbound-ports", "b", c.IncludeInboundPort, `inbound ports to capture ("*" for all)`)
	f.StringVarP(&c.ExcludeInboundPort, "istio-local-exclude-ports", "d", "", "inbound ports never captured")
	f.StringVarP(&c.IncludeOutPorts, "istio-include-outbound-ports", "q", "", "outbound ports always captured")
	f.StringVarP(&c.ExcludeOutPorts, "istio-local-outbound-ports-exclude", "o", "", "outbound ports never captured")
	f.StringVarP(&c.KubeVirtIfaces, "kube-virt-interfaces", "k", "", "interfaces whose inbound traffic is treated as outbound")
	f.StringVarP(&c.ExcludeIfaces, "exclude-interfaces", "c", "", "interfaces never captured")
	f.BoolVar(&c.RedirectDNS, "redirect-dns", false, "capture DNS to the resolvers of /etc/resolv.conf to the agent's DNS proxy on 15053 (default: $ISTIO_META_DNS_CAPTURE)")
	f.BoolVar(&c.CaptureAllDNS, "capture-all-dns", false, "with --redirect-dns: capture DNS to any server")
	f.StringVar(&resolvConf, "resolv-conf", "/etc/resolv.conf", "with --redirect-dns: the file naming the resolvers to capture")
	f.StringVar(&force, "force-iptables-binary", "", "legacy or nft: skip the detection of the iptables variant")
	f.BoolVarP(&dryRun, "dry-run", "n", false, "validate the flags and print the rules (iptables-restore input); install nothing")
	f.BoolVar(&cleanup, "cleanup", false, "remove the rule set (and TPROXY routes) these flags install, and nothing else")
	f.StringVar(&logLevel, "log_output_level", "", "accepted for compatibility with istio-iptables; ignored")
	return cmd
}

// applyCapture installs (or with cleanup removes) plan in the current network namespace.
func applyCapture(cmd *cobra.Command, out io.Writer, plan iptables.Plan, force string, cleanup bool) error {
	ctx := cmd.Context()
	if err := iptables.CheckCapabilities(iptables.Backend{}); err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	b, err := iptables.DetectBackend(ctx, force)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	if err := iptables.CheckCapabilities(b); err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	if cleanup {
		res, err := iptables.Cleanup(ctx, b, plan)
		if err != nil {
			return fmt.Errorf("iptables --cleanup (%s): %w", b.Iptables, err)
		}
		if res.Changed {
			fmt.Fprintf(out, "iptables: removed the capture rules (%s)\n", b.Iptables)
		} else {
			fmt.Fprintf(out, "iptables: no capture rules to remove (%s)\n", b.Iptables)
		}
		return nil
	}
	res, err := iptables.Apply(ctx, b, plan)
	if err != nil {
		return fmt.Errorf("iptables (%s): %w", b.Iptables, err)
	}
	switch {
	case !res.Changed:
		fmt.Fprintf(out, "iptables: the capture rules are already installed (%s); nothing changed\n", b.Iptables)
	case res.Replaced:
		fmt.Fprintf(out, "iptables: replaced a different ISTIO_* rule set with these rules (%s):\n%s", b.Iptables, plan.Restore())
	default:
		fmt.Fprintf(out, "iptables: installed the capture rules (%s):\n%s", b.Iptables, plan.Restore())
	}
	return nil
}

// resolvers reads the nameservers of a resolv.conf file, as Istio does.
func resolvers(path string) ([]netip.Addr, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, s := range cfg.Servers {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s: nameserver %q is not an IP address", path, s)
		}
		out = append(out, a)
	}
	return out, nil
}

func hasIPv4(as []netip.Addr) bool {
	for _, a := range as {
		if a.Unmap().Is4() {
			return true
		}
	}
	return false
}
