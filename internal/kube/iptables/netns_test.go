package iptables

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/netns"
)

// The rule sets installed for real, with iptables-legacy and iptables-nft, each in a private
// network namespace: what iptables-save lists is the expected set, a second run changes
// nothing, a different set is replaced, cleanup leaves only the rules that were there
// before, a failure part-way leaves nothing, TPROXY's policy routes come and go with the
// rules, and a process without NET_ADMIN is told so.
func TestApplyNetns(t *testing.T) {
	for _, variant := range []string{VariantLegacy, VariantNFT} {
		t.Run(variant, func(t *testing.T) {
			if _, err := exec.LookPath("iptables-" + variant + "-restore"); err != nil && os.Getenv("CI") == "" {
				t.Skipf("iptables-%s is not installed", variant)
			}
			t.Setenv("LUCID_TEST_IPTABLES", variant)
			netns.Run(t, "TestApplyChild", "iptables-"+variant, "setpriv")
		})
	}
}

// redirectConfig is the injector's default with DNS capture to one resolver.
func redirectConfig() Config {
	c := Default()
	c.ExcludeInboundPort = "15090,15021,15020"
	c.RedirectDNS, c.DNSServers = true, []netip.Addr{netip.MustParseAddr("192.0.2.53")}
	return c
}

func TestApplyChild(t *testing.T) {
	netns.Child(t)
	ctx := context.Background()
	b, err := DetectBackend(ctx, os.Getenv("LUCID_TEST_IPTABLES"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCapabilities(b); err != nil {
		t.Fatal(err)
	}
	// Rules that are not ours: they must survive everything below.
	netns.Sh(t, b.Iptables+" -t nat -N KEEP_ME && "+b.Iptables+" -t nat -A OUTPUT -p tcp --dport 9 -j KEEP_ME && "+
		b.Iptables+" -t mangle -A OUTPUT -o lo -j RETURN")
	foreign := savedRules(t, b)

	plan := mustPlan(t, redirectConfig())
	t.Run("apply", func(t *testing.T) {
		res, err := Apply(ctx, b, plan)
		if err != nil || !res.Changed || res.Replaced {
			t.Fatalf("Apply: %+v, %v", res, err)
		}
		compareGolden(t, "applied-redirect", savedRules(t, b))
	})
	t.Run("second run changes nothing", func(t *testing.T) {
		before := savedRules(t, b)
		res, err := Apply(ctx, b, plan)
		if err != nil || res.Changed {
			t.Fatalf("second Apply: %+v, %v", res, err)
		}
		if after := savedRules(t, b); after != before {
			t.Fatalf("the second run changed the rules:\n%s", after)
		}
	})
	t.Run("another configuration replaces the set", func(t *testing.T) {
		c := redirectConfig()
		c.ExcludeInboundPort, c.ExcludeOutPorts = "15090,15021,15020,9901", "5432"
		other := mustPlan(t, c)
		res, err := Apply(ctx, b, other)
		if err != nil || !res.Replaced {
			t.Fatalf("Apply of another set: %+v, %v", res, err)
		}
		got := savedRules(t, b)
		if !strings.Contains(got, "--dport 9901 -j RETURN") || !strings.Contains(got, "--dport 5432 -j RETURN") {
			t.Fatalf("the new set is not installed:\n%s", got)
		}
		// Back to the first set: the same rules as the golden, nothing of the other left.
		if _, err := Apply(ctx, b, plan); err != nil {
			t.Fatal(err)
		}
		compareGolden(t, "applied-redirect", savedRules(t, b))
	})
	t.Run("cleanup", func(t *testing.T) {
		res, err := Cleanup(ctx, b, plan)
		if err != nil || !res.Changed {
			t.Fatalf("Cleanup: %+v, %v", res, err)
		}
		if got := savedRules(t, b); got != foreign {
			t.Fatalf("after cleanup:\n%s\nwant only the rules that were there before:\n%s", got, foreign)
		}
		if res, err := Cleanup(ctx, b, plan); err != nil || res.Changed {
			t.Fatalf("second Cleanup: %+v, %v", res, err)
		}
	})
	t.Run("a failure part-way is rolled back", func(t *testing.T) {
		// The raw table comes last: mangle and nat are committed before it fails.
		broken := plan
		broken.Rules = append(slices.Clone(plan.Rules), Rule{Table: "raw", Chain: ChainOutputDNS, Args: []string{"-j", "NO_SUCH_TARGET"}})
		_, err := Apply(ctx, b, broken)
		if err == nil || !strings.Contains(err.Error(), "NO_SUCH_TARGET") || !strings.Contains(err.Error(), "nothing was left installed") {
			t.Fatalf("Apply of a broken set: %v", err)
		}
		if got := savedRules(t, b); got != foreign {
			t.Fatalf("after the failed apply:\n%s\nwant only the rules that were there before:\n%s", got, foreign)
		}
	})
	t.Run("tproxy", func(t *testing.T) {
		c := Default()
		c.Mode, c.ExcludeInboundPort, c.ExcludeIfaces = ModeTProxy, "15090,15021,15020", "eth9"
		tp := mustPlan(t, c)
		if _, err := Apply(ctx, b, tp); err != nil {
			t.Fatal(err)
		}
		compareGolden(t, "applied-tproxy", savedRules(t, b))
		if out := netns.Sh(t, "ip rule show"); !strings.Contains(out, "fwmark 0x539 lookup 133") {
			t.Errorf("no policy rule for the TPROXY mark:\n%s", out)
		}
		if out := netns.Sh(t, "ip route show table 133"); !strings.Contains(out, "local default dev lo") {
			t.Errorf("no local route in table 133:\n%s", out)
		}
		if res, err := Apply(ctx, b, tp); err != nil || res.Changed {
			t.Fatalf("second Apply: %+v, %v", res, err)
		}
		if _, err := Cleanup(ctx, b, tp); err != nil {
			t.Fatal(err)
		}
		if got := savedRules(t, b); got != foreign {
			t.Fatalf("after cleanup:\n%s", got)
		}
		if out := netns.Sh(t, "ip rule show; ip route show table 133"); strings.Contains(out, "0x539") || strings.Contains(out, "local default") {
			t.Errorf("TPROXY routes left after cleanup:\n%s", out)
		}
	})
	t.Run("no NET_ADMIN", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", exe, "-test.run", "^TestNoNetAdminChild$", "-test.v")
		cmd.Env = append(os.Environ(), netns.ChildEnv+"=TestNoNetAdminChild")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestNoNetAdminChild") {
			t.Fatalf("without NET_ADMIN: %v\n%s", err, out)
		}
	})
}

// TestNoNetAdminChild runs without NET_ADMIN (setpriv): the check names the capability and
// installing fails without leaving anything.
func TestNoNetAdminChild(t *testing.T) {
	netns.Child(t)
	err := CheckCapabilities(Backend{})
	if err == nil || !strings.Contains(err.Error(), "missing capability NET_ADMIN") {
		t.Fatalf("CheckCapabilities: %v", err)
	}
}

func mustPlan(t *testing.T, c Config) Plan {
	t.Helper()
	p, err := NewPlan(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// savedRules is iptables-save without comments and counters, the tables in name order
// (legacy and nft print them in different orders), and only what is not empty: the
// user-defined chains and the rules.
func savedRules(t *testing.T, b Backend) string {
	t.Helper()
	out, err := b.save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string][]string{}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line
		case strings.HasPrefix(line, ":") && !builtin(strings.Fields(line[1:])[0]):
			blocks[table] = append(blocks[table], strings.Fields(line)[0])
		case strings.HasPrefix(line, "-A "):
			blocks[table] = append(blocks[table], line)
		}
	}
	var names []string
	for name := range blocks {
		names = append(names, name)
	}
	slices.Sort(names)
	var s strings.Builder
	for _, name := range names {
		s.WriteString(name + "\n" + strings.Join(blocks[name], "\n") + "\n")
	}
	return s.String()
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	testutil.Golden(t, filepath.Join("testdata", name+".golden"), []byte(got))
}
