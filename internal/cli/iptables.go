package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/kube/iptables"
)

func init() { register(newIptablesCmd) }

func newIptablesCmd() *cobra.Command {
	c := iptables.Default()
	var (
		dryRun    bool
		logLevel  string
		uid, gid  uint32
		outP, inP uint16
	)
	cmd := &cobra.Command{
		Use:   "iptables",
		Short: "Validate a pod's traffic-capture settings and print the rules (the istio-init container)",
		Long: `The istio-init container of an injected pod runs this command with istio-iptables' flags.
It validates them and prints the nat rules Istio's REDIRECT mode installs (iptables-save form).
Installing them is not implemented yet: --dry-run is the default.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.ProxyUID, c.OutboundPort, c.InboundPort = uid, outP, inP
			c.ProxyGID = uid
			if cmd.Flags().Changed("proxy-gid") {
				c.ProxyGID = gid
			}
			rules, err := iptables.Rules(c)
			if err != nil {
				return fmt.Errorf("iptables: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.Join(rules, "\n"))
			if !dryRun {
				return fmt.Errorf("iptables: %w", iptables.ErrApplyNotImplemented)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Uint16VarP(&outP, "envoy-port", "p", c.OutboundPort, "outbound capture port")
	f.Uint16VarP(&inP, "inbound-capture-port", "z", c.InboundPort, "inbound capture port")
	f.Uint16VarP(&c.InboundTunnelPort, "inbound-tunnel-port", "e", c.InboundTunnelPort, "HBONE tunnel port, never captured inbound")
	f.Uint32VarP(&uid, "proxy-uid", "u", c.ProxyUID, "the proxy's uid: its traffic is not captured")
	f.Uint32VarP(&gid, "proxy-gid", "g", c.ProxyGID, "the proxy's gid (default: the uid)")
	f.StringVarP(&c.Mode, "istio-inbound-interception-mode", "m", c.Mode, "REDIRECT or TPROXY")
	f.StringVarP(&c.IncludeOutboundIPs, "istio-service-cidr", "i", c.IncludeOutboundIPs, `outbound CIDRs to capture ("*" for all)`)
	f.StringVarP(&c.ExcludeOutboundIPs, "istio-service-exclude-cidr", "x", "", "outbound CIDRs never captured")
	f.StringVarP(&c.IncludeInboundPort, "istio-inbound-ports", "b", c.IncludeInboundPort, `inbound ports to capture ("*" for all)`)
	f.StringVarP(&c.ExcludeInboundPort, "istio-local-exclude-ports", "d", "", "inbound ports never captured")
	f.StringVarP(&c.IncludeOutPorts, "istio-include-outbound-ports", "q", "", "outbound ports always captured")
	f.StringVarP(&c.ExcludeOutPorts, "istio-local-outbound-ports-exclude", "o", "", "outbound ports never captured")
	f.StringVarP(&c.KubeVirtIfaces, "kube-virt-interfaces", "k", "", "interfaces whose inbound traffic is treated as outbound")
	f.StringVarP(&c.ExcludeIfaces, "exclude-interfaces", "c", "", "interfaces never captured")
	f.BoolVarP(&dryRun, "dry-run", "n", true, "validate and print the rules only (installing them is not implemented yet)")
	f.StringVar(&logLevel, "log_output_level", "", "accepted for compatibility with istio-iptables; ignored")
	return cmd
}
