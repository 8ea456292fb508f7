package iptables

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestRulesGolden renders the rules for the injector's default arguments and for a pod with
// every capture annotation; compare with Istio's goldens (tools/istio-iptables/pkg/capture/testdata).
func TestRulesGolden(t *testing.T) {
	withAll := Default()
	withAll.IncludeInboundPort = "8080,9090"
	withAll.ExcludeInboundPort = "15090,15021,15020"
	withAll.IncludeOutboundIPs = "10.0.0.0/8,fd00::/8"
	withAll.ExcludeOutboundIPs = "10.96.0.1"
	withAll.ExcludeOutPorts = "5432"
	withAll.IncludeOutPorts = "3306"
	withAll.ExcludeIfaces = "eth1"
	injectorDefault := Default()
	injectorDefault.ExcludeInboundPort = "15090,15021,15020"
	noInbound := Default()
	noInbound.IncludeInboundPort = ""
	for name, c := range map[string]Config{"default": injectorDefault, "annotations": withAll, "no-inbound": noInbound} {
		t.Run(name, func(t *testing.T) {
			rules, err := Rules(c)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(rules, "\n") + "\n"
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("rules differ from %s:\n%s", golden, got)
			}
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
