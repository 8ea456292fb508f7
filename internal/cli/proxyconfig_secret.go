package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/diag/configview"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
)

// newPCSecret is `lucid proxy-config secret <workload>`: the workload certificate and the
// mesh roots the sidecar holds, as istioctl shows them.
func newPCSecret(t *target) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "secret <workload>",
		Aliases: []string{"secrets", "s"},
		Short:   "Secrets: RESOURCE NAME TYPE STATUS VALID CERT SERIAL NUMBER NOT AFTER NOT BEFORE IDENTITY",
		Example: "  lucid proxy-config secret productpage\n  lucid proxy-config secret productpage -o json",
		Args:    t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "json"); err != nil {
				return err
			}
			tg, err := t.resolve(cmd.Context(), args)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), t.timeout)
			defer cancel()
			b, err := t.client().Get(ctx, tg.Admin, "/config_dump")
			if err != nil {
				return fmt.Errorf("read %s/config_dump: %w", tg.Admin, err)
			}
			rows, err := inspect.ParseSecrets(b, time.Now())
			if err != nil {
				return fmt.Errorf("decode %s/config_dump: %w", tg.Admin, err)
			}
			if len(rows) == 0 {
				return fmt.Errorf("%s holds no secrets: it runs without a CA (no --ca-address), so it has no workload certificate and no mutual TLS", tg.Admin)
			}
			if output == "json" {
				js, err := jsonIndent(rows)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(js)
				return err
			}
			return configview.Secrets(cmd.OutOrStdout(), rows)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output: (table), json")
	return cmd
}
