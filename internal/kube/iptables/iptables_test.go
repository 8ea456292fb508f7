package iptables

import (
	"net/netip"
	"strings"
	"testing"
)

// goldenConfigs are the rule sets kept in testdata/*.golden. Most mirror a case of
// istio-iptables' capture tests (same flags, so the IPv4 rules must be the ones Istio
// installs); "default" is what the injector writes for a pod without annotations.
func goldenConfigs() map[string]Config {
	istio := func(modify func(*Config)) Config {
		// Istio's test base: no inbound capture, no outbound ranges.
		c := Default()
		c.IncludeInboundPort, c.IncludeOutboundIPs = "", ""
		modify(&c)
		return c
	}
	dns := []netip.Addr{netip.MustParseAddr("127.0.0.53")}
	return map[string]Config{
		"default": func() Config { c := Default(); c.ExcludeInboundPort = "15090,15021,15020"; return c }(),
		"annotations": func() Config {
			c := Default()
			c.IncludeInboundPort = "8080,9090"
			c.ExcludeInboundPort = "15090,15021,15020"
			c.IncludeOutboundIPs = "10.0.0.0/8,fd00::/8"
			c.ExcludeOutboundIPs = "10.96.0.1"
			c.ExcludeOutPorts = "5432"
			c.IncludeOutPorts = "3306"
			c.ExcludeIfaces = "eth1"
			return c
		}(),
		"empty":                  istio(func(*Config) {}),
		"inbound-ports-include":  istio(func(c *Config) { c.IncludeInboundPort = "32000,31000" }),
		"inbound-ports-wildcard": istio(func(c *Config) { c.IncludeInboundPort = "*" }),
		"inbound-ports-tproxy": istio(func(c *Config) {
			c.IncludeInboundPort, c.Mode = "32000,31000", ModeTProxy
		}),
		"inbound-ports-wildcard-tproxy": istio(func(c *Config) { c.IncludeInboundPort, c.Mode = "*", ModeTProxy }),
		"kube-virt-interfaces": istio(func(c *Config) {
			c.KubeVirtIfaces, c.IncludeOutboundIPs = "eth1,eth2", "*"
		}),
		"ipnets": istio(func(c *Config) { c.IncludeOutboundIPs = "10.0.0.0/8" }),
		"ipnets-with-kube-virt-interfaces": istio(func(c *Config) {
			c.KubeVirtIfaces, c.IncludeOutboundIPs = "eth1,eth2", "10.0.0.0/8"
		}),
		"outbound-ports-include": istio(func(c *Config) { c.IncludeOutPorts = "32000,31000" }),
		"basic-exclude-nic":      istio(func(c *Config) { c.ExcludeIfaces = "not-istio-nic" }),
		"ip-range": istio(func(c *Config) {
			c.ExcludeOutboundIPs, c.IncludeOutboundIPs = "1.1.0.0/16", "9.9.0.0/16"
			c.RedirectDNS, c.DNSServers = true, dns
		}),
		"loopback-outbound-iprange": istio(func(c *Config) {
			c.IncludeOutboundIPs = "127.1.2.3/32"
			c.RedirectDNS, c.DNSServers = true, dns
		}),
		"tproxy": istio(func(c *Config) {
			c.Mode, c.IncludeInboundPort = ModeTProxy, "*"
			c.ExcludeOutboundIPs, c.IncludeOutboundIPs = "1.1.0.0/16", "9.9.0.0/16"
			c.RedirectDNS, c.DNSServers = true, dns
			c.ExcludeIfaces = "not-istio-nic"
		}),
		"dns-capture-all": func() Config {
			c := Default()
			c.ExcludeInboundPort = "15090,15021,15020"
			c.RedirectDNS, c.CaptureAllDNS = true, true
			return c
		}(),
	}
}

// TestRulesGolden renders every golden configuration (compare with Istio's goldens: the
// rule text and order are the same for the same flags).
func TestRulesGolden(t *testing.T) {
	for name, c := range goldenConfigs() {
		t.Run(name, func(t *testing.T) {
			rules, err := Rules(c)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, name, strings.Join(rules, "\n")+"\n")
		})
	}
}

func TestRulesDefault(t *testing.T) {
	c := Default()
	c.ExcludeInboundPort = "15090,15021,15020"
	rules, err := Rules(c)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(rules, "\n")
	for _, want := range []string{
		"-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
		"-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
		"-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN",
		"-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN",
		"-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
		"-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
		"-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("missing rule %q", want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"default", func(*Config) {}, ""},
		{"trailing comma (status port 0)", func(c *Config) { c.ExcludeInboundPort = "15090,15021," }, ""},
		{"bad mode", func(c *Config) { c.Mode = "EBPF" }, "-m"},
		{"port name", func(c *Config) { c.IncludeInboundPort = "80,http" }, `-b "80,http"`},
		{"port 0", func(c *Config) { c.ExcludeInboundPort = "0" }, "-d"},
		{"port too big", func(c *Config) { c.ExcludeOutPorts = "70000" }, "-o"},
		{"bad cidr", func(c *Config) { c.ExcludeOutboundIPs = "10.0.0.0/33" }, "-x"},
		{"star only for include", func(c *Config) { c.ExcludeOutboundIPs = "*" }, "-x"},
		{"uid 0", func(c *Config) { c.ProxyUID = 0 }, "-u"},
		{"bad interface", func(c *Config) { c.ExcludeIfaces = "eth 0" }, "-c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.modify(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"15090,15021,15020", "*", "", "10.0.0.0/8,fd00::/8", "1.2.3.4", ",,", "65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ports, err := ParsePorts(s); err == nil {
			for _, p := range ports {
				if p == 0 {
					t.Fatalf("ParsePorts(%q) returned port 0", s)
				}
			}
		}
		_, _ = ParseCIDRs(s)
		c := Default()
		c.IncludeInboundPort, c.ExcludeOutboundIPs = s, s
		if c.Validate() == nil {
			if _, err := Rules(c); err != nil {
				t.Fatalf("valid config but Rules failed: %v", err)
			}
		}
	})
}
