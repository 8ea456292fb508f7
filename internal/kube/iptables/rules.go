package iptables

import (
	"errors"
	"fmt"
	"strings"
)

// Rules returns the IPv4 nat table, in iptables-save form ("* nat", the rules, "COMMIT"),
// that Istio's REDIRECT mode installs for c. c must be valid (Validate); TPROXY is not
// rendered yet.
func Rules(c Config) ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Mode != ModeRedirect {
		return nil, fmt.Errorf("-m %s: only REDIRECT rules are rendered so far", c.Mode)
	}
	if c.ProxyGID == 0 {
		c.ProxyGID = c.ProxyUID
	}
	var r []string
	add := func(format string, a ...any) { r = append(r, fmt.Sprintf(format, a...)) }

	r = append(r, "* nat", "-N ISTIO_INBOUND", "-N ISTIO_REDIRECT", "-N ISTIO_IN_REDIRECT", "-N ISTIO_OUTPUT")
	add("-A ISTIO_INBOUND -p tcp --dport %d -j RETURN", c.InboundTunnelPort)
	add("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports %d", c.OutboundPort)
	add("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports %d", c.InboundPort)

	excludedIfaces, _ := parseNames(c.ExcludeIfaces)
	for _, i := range excludedIfaces {
		add("-A PREROUTING -i %s -j RETURN", i)
	}
	kubeVirt, _ := parseNames(c.KubeVirtIfaces)
	for _, i := range kubeVirt {
		add("-A PREROUTING -i %s -j ISTIO_REDIRECT", i)
	}

	// Inbound.
	if in := strings.TrimSpace(c.IncludeInboundPort); in != "" {
		add("-A PREROUTING -p tcp -j ISTIO_INBOUND")
		if in == "*" {
			excluded, _ := ParsePorts(c.ExcludeInboundPort)
			for _, p := range excluded {
				add("-A ISTIO_INBOUND -p tcp --dport %d -j RETURN", p)
			}
			add("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT")
		} else {
			included, _ := ParsePorts(in)
			for _, p := range included {
				add("-A ISTIO_INBOUND -p tcp --dport %d -j ISTIO_IN_REDIRECT", p)
			}
		}
	}

	// Outbound.
	add("-A OUTPUT -j ISTIO_OUTPUT")
	excludedOut, _ := ParsePorts(c.ExcludeOutPorts)
	for _, p := range excludedOut {
		add("-A ISTIO_OUTPUT -p tcp --dport %d -j RETURN", p)
		add("-A ISTIO_OUTPUT -p udp --dport %d -j RETURN", p)
	}
	add("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN")
	for _, owner := range []string{fmt.Sprintf("--uid-owner %d", c.ProxyUID), fmt.Sprintf("--gid-owner %d", c.ProxyGID)} {
		add("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport %d -m owner %s -j ISTIO_IN_REDIRECT", c.InboundTunnelPort, owner)
		add("-A ISTIO_OUTPUT -o lo -m owner ! %s -j RETURN", owner)
		add("-A ISTIO_OUTPUT -m owner %s -j RETURN", owner)
	}
	add("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN")
	includedOut, _ := ParsePorts(c.IncludeOutPorts)
	for _, p := range includedOut {
		add("-A ISTIO_OUTPUT -p tcp --dport %d -j ISTIO_REDIRECT", p)
	}
	excludedCIDRs, _ := ParseCIDRs(c.ExcludeOutboundIPs)
	for _, p := range excludedCIDRs {
		if p.Addr().Is4() {
			add("-A ISTIO_OUTPUT -d %s -j RETURN", p)
		}
	}
	switch in := strings.TrimSpace(c.IncludeOutboundIPs); in {
	case "":
	case "*":
		add("-A ISTIO_OUTPUT -j ISTIO_REDIRECT")
	default:
		included, _ := ParseCIDRs(in)
		for _, p := range included {
			if p.Addr().Is4() {
				add("-A ISTIO_OUTPUT -d %s -j ISTIO_REDIRECT", p)
			}
		}
	}
	r = append(r, "COMMIT")
	return r, nil
}

// ErrApplyNotImplemented is returned by callers asked to install the rules: the capture
// itself is a later step; for now the init container validates and prints.
var ErrApplyNotImplemented = errors.New("installing the rules is not implemented yet; run with --dry-run (the default) to validate and print them")
