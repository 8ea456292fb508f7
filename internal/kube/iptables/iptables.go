// Package iptables turns the traffic-capture settings of a pod (Istio's istio-iptables
// flags, as the injector writes them into the istio-init container) into the rule set
// that captures the pod's traffic. It sits at the start of a pod's life on Kubernetes:
// `lucid iptables` (the init container) validates the flags and prints the rules; applying
// them is a later step. Pure: no I/O.
//
// The rules are Istio's REDIRECT rule set (tools/istio-iptables): inbound TCP to the inbound
// capture port (15006), outbound TCP to the outbound port (15001), traffic of the proxy's
// uid/gid and to 127.0.0.1 left alone, 127.0.0.6 (the source of app probes and inbound
// passthrough) never captured.
package iptables

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Interception modes (-m).
const (
	ModeRedirect = "REDIRECT"
	ModeTProxy   = "TPROXY"
)

// Config is the capture configuration: one field per istio-iptables flag.
type Config struct {
	OutboundPort       uint16 // -p: Envoy's outbound capture port (15001)
	InboundPort        uint16 // -z: inbound capture port (15006)
	InboundTunnelPort  uint16 // -e: HBONE tunnel port (15008), never captured inbound
	ProxyUID           uint32 // -u: the proxy's uid (1337); its own traffic is not captured
	ProxyGID           uint32 // -g: the proxy's gid (defaults to the uid)
	Mode               string // -m: REDIRECT or TPROXY
	IncludeOutboundIPs string // -i: "*" or CIDRs to capture outbound ("" captures none)
	ExcludeOutboundIPs string // -x: CIDRs never captured outbound
	IncludeInboundPort string // -b: "*" or ports to capture inbound ("" captures none)
	ExcludeInboundPort string // -d: ports not captured inbound (with -b "*")
	IncludeOutPorts    string // -q: ports always captured outbound
	ExcludeOutPorts    string // -o: ports never captured outbound
	KubeVirtIfaces     string // -k: interfaces whose inbound traffic is treated as outbound
	ExcludeIfaces      string // -c: interfaces never captured
}

// Default is istio-iptables' defaults (tools/common/config).
func Default() Config {
	return Config{
		OutboundPort: 15001, InboundPort: 15006, InboundTunnelPort: 15008,
		ProxyUID: 1337, ProxyGID: 1337, Mode: ModeRedirect,
		IncludeOutboundIPs: "*", IncludeInboundPort: "*",
	}
}

// Validate checks every list the way istio-iptables parses them; the error names the flag.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != ModeRedirect && c.Mode != ModeTProxy {
		errs = append(errs, fmt.Errorf("-m %q: the interception mode must be REDIRECT or TPROXY", c.Mode))
	}
	if c.OutboundPort == 0 || c.InboundPort == 0 {
		errs = append(errs, errors.New("-p and -z: the capture ports must not be 0"))
	}
	if c.ProxyUID == 0 {
		errs = append(errs, errors.New("-u: the proxy's uid must not be 0 (its traffic would not be told apart from root's)"))
	}
	check := func(flag, v string, star bool, parse func(string) error) {
		if star && strings.TrimSpace(v) == "*" {
			return
		}
		if err := parse(v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", flag, v, err))
		}
	}
	ports := func(s string) error { _, err := ParsePorts(s); return err }
	cidrs := func(s string) error { _, err := ParseCIDRs(s); return err }
	ifaces := func(s string) error { _, err := parseNames(s); return err }
	check("-i", c.IncludeOutboundIPs, true, cidrs)
	check("-x", c.ExcludeOutboundIPs, false, cidrs)
	check("-b", c.IncludeInboundPort, true, ports)
	check("-d", c.ExcludeInboundPort, false, ports)
	check("-q", c.IncludeOutPorts, false, ports)
	check("-o", c.ExcludeOutPorts, false, ports)
	check("-k", c.KubeVirtIfaces, false, ifaces)
	check("-c", c.ExcludeIfaces, false, ifaces)
	return errors.Join(errs...)
}

// ParsePorts parses a comma-separated port list ("15090,15021,15020"). Empty items are
// skipped, as istio-iptables does (the injector can write "15090,15021," when the status
// port is 0).
func ParsePorts(s string) ([]uint16, error) {
	var out []uint16
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := strconv.ParseUint(item, 10, 16)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("%q is not a port (1-65535)", item)
		}
		out = append(out, uint16(p))
	}
	return out, nil
}

// ParseCIDRs parses a comma-separated list of CIDRs ("10.0.0.0/8,fd00::/8"). A bare
// address is taken as a single-host prefix.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func parseNames(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.ContainsAny(item, " /\t") || len(item) > 15 {
			return nil, fmt.Errorf("%q is not an interface name", item)
		}
		out = append(out, item)
	}
	return out, nil
}
