package agent

import (
	"net/netip"
	"strings"
	"testing"
)

// In a pod the proxy calls its agent at 127.0.0.1:15020 (the capture rules would send a
// call to the pod IP to 15006) and the status server listens on every address; in local
// mode both stay on the workload's loopback address.
func TestAgentEndpointAndStatusAddress(t *testing.T) {
	pod, local := netip.MustParseAddr("10.213.0.7"), netip.MustParseAddr("127.0.10.2")
	if got := newStatic(agentEndpoint(pod), 15020, 15021).clusters[agentClusterName].LoadAssignment.Endpoints[0].Address.String(); got != "127.0.0.1:15020" {
		t.Errorf("pod: agent cluster at %s, want 127.0.0.1:15020", got)
	}
	if got := statusListenAddr(pod).String(); got != "0.0.0.0" {
		t.Errorf("pod: status server on %s, want 0.0.0.0", got)
	}
	if agentEndpoint(local) != local || statusListenAddr(local) != local {
		t.Errorf("local mode: agent %s, status %s; want %s for both", agentEndpoint(local), statusListenAddr(local), local)
	}
}

func TestInterceptionMode(t *testing.T) {
	for mode, want := range map[string]bool{"": false, "NONE": false, "REDIRECT": true, "redirect": true, "TPROXY": true} {
		if got, err := captureOn(mode); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", mode, got, err, want)
		}
	}
	for _, mode := range []string{"IPTABLES", "redirect-all"} {
		_, err := captureOn(mode)
		if err == nil || !strings.Contains(err.Error(), "--interception-mode") {
			t.Errorf("%q: %v, want an error naming --interception-mode", mode, err)
		}
	}
	o := Options{IP: netip.MustParseAddr("10.0.0.1"), Workload: "w", AgentOptions: AgentOptions{InterceptionMode: "bogus"}}
	if _, err := o.withDefaults(); err == nil {
		t.Error("an unknown interception mode was accepted")
	}
}

// A proxy under TPROXY running as uid 1337 is told why the app's connections would loop
// and what to do; as root (the injector's choice) or under REDIRECT nothing is said.
func TestTProxyUserWarning(t *testing.T) {
	if msg := tproxyUserWarning("TPROXY", 1337); !strings.Contains(msg, "--uid-owner 1337") || !strings.Contains(msg, "root in group 1337") {
		t.Errorf("TPROXY as 1337: %q", msg)
	}
	for _, c := range []struct {
		mode string
		uid  int
	}{{"TPROXY", 0}, {"REDIRECT", 1337}, {"", 1337}} {
		if msg := tproxyUserWarning(c.mode, c.uid); msg != "" {
			t.Errorf("%s as %d: %q, want nothing", c.mode, c.uid, msg)
		}
	}
}
