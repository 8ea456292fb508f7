// Package syncview renders `lucid proxy-status`: the control plane's per-proxy, per-type
// sync state as a table, and, for one proxy, the comparison of what the control plane
// would send with what the proxy applied. It sits at the end of the diagnostics flow:
//
//	discovery /debug/syncz, /debug/config_dump ─┐
//	sidecar /config_dump?include_eds ───────────┴→ inspect → syncview → terminal
package syncview

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
)

// Types are the xDS types shown, in istioctl's column order (≤1.26).
var Types = []string{contract.CDS, contract.LDS, contract.EDS, contract.RDS}

// Table prints one row per proxy, Istio ≤1.26's proxy-status columns adapted to Lucid:
//
//	NAME  CLUSTER  CDS  LDS  EDS  RDS  DISCOVERY  VERSION  LAG
//
// ECDS is left out (Lucid sends none); ISTIOD is DISCOVERY, the control plane's address;
// VERSION is the configuration version the proxy holds (the store version its last acked
// responses were built from) instead of the proxy's software version. LAG is how long ago
// the oldest configuration change the proxy has not acknowledged happened (0s: it holds
// the newest configuration). Each type cell is
// SYNCED, NOT SENT, STALE or ERROR with its age in parentheses. NACK reasons and proxies
// that are not connected follow the table.
func Table(w io.Writer, st []contract.ProxyStatus, discovery string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLUSTER\tCDS\tLDS\tEDS\tRDS\tDISCOVERY\tVERSION\tLAG")
	var notes []string
	for _, s := range st {
		name := s.ID
		if p, ok := inspect.ParseNodeID(s.ID); ok {
			name = p.Name()
		}
		cluster := s.Metadata["CLUSTER_ID"]
		if cluster == "" {
			cluster = "Kubernetes"
		}
		cells := []string{name, cluster}
		for _, t := range Types {
			ts := s.Types[t]
			cells = append(cells, Cell(ts, now))
			if ts != nil && ts.State == contract.StateError {
				notes = append(notes, fmt.Sprintf("%s %s rejected version %s (NACK): %s", name, t, ts.NackedVersion, ts.NackReason))
			}
		}
		lag := "0s"
		if !s.BehindSince.IsZero() {
			lag = Age(now.Sub(s.BehindSince))
		}
		cells = append(cells, discovery, HeldVersion(s), lag)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
		if !s.Connected {
			notes = append(notes, fmt.Sprintf("%s is not connected (last connected %s ago); its status is what it had", name, Age(now.Sub(s.ConnectedAt))))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("syncview: %w", err)
	}
	if len(notes) > 0 {
		if _, err := io.WriteString(w, "\n"+strings.Join(notes, "\n")+"\n"); err != nil {
			return fmt.Errorf("syncview: %w", err)
		}
	}
	return nil
}

// Cell renders one type's state with its age: SYNCED since the ACK, STALE since the send,
// ERROR since the NACK.
func Cell(ts *contract.TypeStatus, now time.Time) string {
	if ts == nil || ts.State == "" || ts.State == contract.StateNotSent {
		return contract.StateNotSent
	}
	var at time.Time
	switch ts.State {
	case contract.StateSynced:
		at = ts.AckedAt
	case contract.StateStale:
		at = ts.SentAt
	case contract.StateError:
		at = ts.NackedAt
	}
	if at.IsZero() {
		return ts.State
	}
	return fmt.Sprintf("%s (%s)", ts.State, Age(now.Sub(at)))
}

// HeldVersion is the configuration version a proxy holds: the part before "-" of its acked
// versions when they agree (versions are "<config version>-<content hash>"), else the
// acked versions per type.
func HeldVersion(s contract.ProxyStatus) string {
	seen := map[string]bool{}
	var first string
	var per []string
	for _, t := range Types {
		ts := s.Types[t]
		if ts == nil || ts.AckedVersion == "" {
			continue
		}
		v, _, _ := strings.Cut(ts.AckedVersion, "-")
		if first == "" {
			first = v
		}
		seen[v] = true
		per = append(per, t+":"+v)
	}
	switch len(seen) {
	case 0:
		return "-"
	case 1:
		return first
	}
	return strings.Join(per, ",")
}

// Age renders a duration as kubectl does, coarser as it grows: 45s, 3m12s, 25m, 5h3m, 3d.
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
