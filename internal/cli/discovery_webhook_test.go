package cli

import (
	"testing"

	"github.com/lucid-mesh/lucid/internal/kube/install"
)

// TestDiscoveryAcceptsInstallArgs: the Deployment `lucid install` renders runs a command
// line the discovery command accepts, --webhook-addr included.
func TestDiscoveryAcceptsInstallArgs(t *testing.T) {
	root := NewRoot()
	cmd, rest, err := root.Find(install.DiscoveryArgs)
	if err != nil || cmd.Name() != "discovery" {
		t.Fatalf("find discovery: %v %v", cmd, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("install.DiscoveryArgs %q rejected: %v", install.DiscoveryArgs, err)
	}
	if got := cmd.Flags().Lookup("webhook-addr").Value.String(); got != ":15017" {
		t.Fatalf("--webhook-addr = %q", got)
	}
}
