package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The flags the injector writes, in dry-run: the rules are printed, nothing is installed.
// Installing is tested in private network namespaces in internal/kube/iptables.
func TestIptablesCommandDryRun(t *testing.T) {
	out, _, err := runCLI(t, "", "iptables", "--dry-run", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
		"-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN") || !strings.HasPrefix(out, "* nat\n") {
		t.Errorf("unexpected rules:\n%s", out)
	}
	if strings.Contains(out, "ISTIO_OUTPUT_DNS") {
		t.Errorf("DNS captured without --redirect-dns:\n%s", out)
	}
}

func TestIptablesCommandDNS(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ISTIO_META_DNS_CAPTURE", "true")
	out, _, err := runCLI(t, "", "iptables", "-n", "--resolv-conf", resolv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-port 15053",
		"-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-ports 15053",
		"-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	t.Setenv("ISTIO_META_DNS_CAPTURE", "maybe")
	if _, _, err := runCLI(t, "", "iptables", "-n"); err == nil || !strings.Contains(err.Error(), "ISTIO_META_DNS_CAPTURE") {
		t.Errorf("bad ISTIO_META_DNS_CAPTURE: %v", err)
	}
}

// Bad input fails before anything is installed, naming the flag (or what is missing).
func TestIptablesCommandBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-b", "80,http"}, `-b "80,http"`},
		{[]string{"-m", "EBPF"}, `-m "EBPF"`},
		{[]string{"-x", "10.0.0.0/33"}, `-x "10.0.0.0/33"`},
		{[]string{"-i", "10.0.0.1/8,nonsense"}, `-i "10.0.0.1/8,nonsense"`},
		{[]string{"-m", "TPROXY", "-r", "254"}, "-r 254"},
		{[]string{"--force-iptables-binary", "iptables-ng"}, "--force-iptables-binary"},
		{[]string{"--redirect-dns", "--resolv-conf", "/nonexistent/resolv.conf"}, "--redirect-dns"},
		{[]string{"-p", "99999"}, "envoy-port"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if tc.args[0] == "--force-iptables-binary" && os.Geteuid() != 0 {
				t.Skip("the variant is checked after the capability")
			}
			// An empty PATH: whatever happens, no iptables binary can touch this namespace.
			t.Setenv("PATH", "")
			_, _, err := runCLI(t, "", append([]string{"iptables"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// Without an iptables binary the command says so (root only: otherwise the missing
// capability is reported first, see internal/kube/iptables).
func TestIptablesCommandNoBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("as non-root the missing NET_ADMIN capability is reported first")
	}
	t.Setenv("PATH", "")
	_, _, err := runCLI(t, "", "iptables")
	if err == nil || !strings.Contains(err.Error(), "no usable iptables binary") {
		t.Errorf("error %v, want the missing iptables binary named", err)
	}
}
