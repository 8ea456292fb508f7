package syncview

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// A proxyless gRPC client (node metadata GENERATOR "grpc") has no admin API: nothing it
// holds can be read back and diffed against the control plane. What can be known is the
// control plane's record of what it sent the client and what the client acknowledged
// (istioctl, too, reports proxyless clients from istiod's side only).

// IsProxyless reports whether s is a proxyless gRPC client.
func IsProxyless(s contract.ProxyStatus) bool { return s.Metadata["GENERATOR"] == "grpc" }

// typeNames are istioctl's words for the xDS types in its per-proxy comparison.
var typeNames = map[string]string{contract.CDS: "Clusters", contract.LDS: "Listeners", contract.EDS: "Endpoints", contract.RDS: "Routes"}

// Proxyless prints, for the proxyless gRPC client s, why its configuration cannot be
// diffed and, per type, what the control plane's record says it holds.
func Proxyless(w io.Writer, s contract.ProxyStatus, name string, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is a proxyless gRPC client (node metadata GENERATOR \"grpc\"): it has no admin API, so its\n"+
		"configuration cannot be read back and diffed. What it holds is what the control plane sent and it\n"+
		"acknowledged (it subscribes by name: only the resources it asked for):\n", name)
	for _, t := range Types {
		ts := s.Types[t]
		fmt.Fprintf(&b, "  %-10s %s\n", typeNames[t], proxylessLine(ts, now))
	}
	if !s.Connected {
		fmt.Fprintf(&b, "%s is not connected (last connected %s ago): this is what it had.\n", name, Age(now.Sub(s.ConnectedAt)))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("syncview: %w", err)
	}
	return nil
}

func proxylessLine(ts *contract.TypeStatus, now time.Time) string {
	if ts == nil || ts.State == "" || ts.State == contract.StateNotSent {
		return contract.StateNotSent + ": it has asked for nothing of this type, or nothing was sent yet"
	}
	holds := ""
	if ts.AckedVersion != "" {
		holds = fmt.Sprintf(" (it holds version %s, acknowledged %s ago)", ts.AckedVersion, Age(now.Sub(ts.AckedAt)))
	}
	switch ts.State {
	case contract.StateSynced:
		return fmt.Sprintf("%s: version %s acknowledged %s ago", ts.State, ts.AckedVersion, Age(now.Sub(ts.AckedAt)))
	case contract.StateStale:
		return fmt.Sprintf("%s: version %s sent %s ago, not acknowledged yet%s", ts.State, ts.SentVersion, Age(now.Sub(ts.SentAt)), holds)
	case contract.StateError:
		return fmt.Sprintf("%s: rejected version %s %s ago (NACK): %s%s", ts.State, ts.NackedVersion, Age(now.Sub(ts.NackedAt)), ts.NackReason, holds)
	}
	return ts.State
}
