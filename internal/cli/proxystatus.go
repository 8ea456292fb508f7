package cli

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/diag/syncview"
)

func init() { register(newProxyStatusCmd) }

// now is the clock proxy-status measures ages with (tests fix it).
var now = time.Now

func newProxyStatusCmd() *cobra.Command {
	var t target
	cmd := &cobra.Command{
		Use:     "proxy-status [<workload>]",
		Aliases: []string{"ps"},
		Short:   "Which proxies hold which configuration; diff one proxy against the control plane",
		Long: `Without a workload: every proxy the control plane knows, and per xDS type whether it
holds what was last sent: SYNCED (acked), NOT SENT, STALE (sent, not yet acked) or ERROR
(rejected: the NACK reason follows the table), each with its age, and the configuration
version it holds. Columns are Istio 1.26's (NAME CLUSTER CDS LDS EDS RDS ISTIOD VERSION)
without ECDS, with DISCOVERY for ISTIOD and the configuration version for VERSION.

With a workload: compares what the control plane would send it (/debug/config_dump) with
what its sidecar applied (admin /config_dump), per type: "Clusters Match", or a unified diff.
A proxyless gRPC client has no admin API: for it, the control plane's record of what it
sent and the client acknowledged, per type.`,
		Example: `  lucid proxy-status
  lucid proxy-status curl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), t.timeout)
			defer cancel()
			c := t.client()
			st, err := c.SyncStatus(ctx, t.debug)
			if err != nil {
				return fmt.Errorf("read the control plane's sync status at %s: %w", t.debug, err)
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				return syncview.Table(out, st, t.debug, now())
			}
			p, err := inspect.FindProxy(st, args[0])
			if err != nil {
				return err
			}
			if s := statusOf(st, p.ID); s != nil && syncview.IsProxyless(*s) { // no admin API to diff against
				if err := syncview.Table(out, []contract.ProxyStatus{*s}, t.debug, now()); err != nil {
					return err
				}
				fmt.Fprintln(out)
				return syncview.Proxyless(out, *s, p.Name(), now())
			}
			admin := cmp.Or(t.admin, p.Admin) // where the proxy said its admin API is
			if admin == "" {
				admin = fmt.Sprintf("%s:%d", p.IP, t.adminPort)
			}
			want, err := c.ControlPlaneDump(ctx, t.debug, p.ID)
			if err != nil {
				return fmt.Errorf("read what the control plane would send %s: %w", p.Name(), err)
			}
			got, err := c.ConfigDump(ctx, admin, true)
			if err != nil {
				return fmt.Errorf("read %s's applied configuration at %s: %w", p.Name(), admin, err)
			}
			if s := statusOf(st, p.ID); s != nil {
				if err := syncview.Table(out, []contract.ProxyStatus{*s}, t.debug, now()); err != nil {
					return err
				}
				fmt.Fprintln(out)
			}
			_, err = syncview.Compare(out, want, got, p.Name())
			return err
		},
	}
	t.addFlags(cmd)
	return cmd
}

func statusOf(st []contract.ProxyStatus, id string) *contract.ProxyStatus {
	for i := range st {
		if st[i].ID == id {
			return &st[i]
		}
	}
	return nil
}
