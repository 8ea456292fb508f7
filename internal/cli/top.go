package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/diag/tapview"
)

func init() { register(newTopCmd) }

func newTopCmd() *cobra.Command {
	var (
		t        tapFlags
		interval time.Duration
		duration time.Duration
		rows     int
	)
	cmd := &cobra.Command{
		Use:   "top <workload>",
		Short: "The paths a sidecar or gateway serves, busiest first, from its live tap",
		Long: `Aggregate a workload's tap (see lucid tap; the same filters) by method and path: how
many requests, the success rate, p50 and p99 latency, response flags and the newest error's
cause. The table is redrawn every --interval on a terminal, printed every --interval
otherwise, and once more when it stops (Ctrl-C, or after --duration).`,
		Example: `  lucid top productpage
  lucid top istio-ingressgateway -n istio-system --duration 3s`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval %s: want a positive duration", interval)
			}
			ctx := cmd.Context()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			body, err := tapview.Open(ctx, http.DefaultClient, t.source(args[0]), t.filter)
			if err != nil {
				return err
			}
			defer body.Close()
			events := make(chan contract.TapEvent, 256)
			done := make(chan error, 1)
			go func() {
				defer close(events)
				done <- tapview.Read(body, func(ev contract.TapEvent) error {
					select {
					case events <- ev:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				})
			}()
			out := cmd.OutOrStdout()
			redraw := isTerminal(os.Stdout) && out == os.Stdout
			top := tapview.NewTop()
			draw := func() error {
				if redraw {
					fmt.Fprint(out, "\x1b[H\x1b[2J")
				}
				fmt.Fprintf(out, "%s  %s\n", args[0], time.Now().Format("15:04:05"))
				return top.Write(out, rows)
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case ev, ok := <-events:
					if !ok {
						err := <-done
						if derr := draw(); derr != nil {
							return derr
						}
						if ctx.Err() != nil { // Ctrl-C or --duration: a clean stop
							return nil
						}
						return tapEnded(cmd, err)
					}
					top.Add(ev)
				case <-tick.C:
					if err := draw(); err != nil {
						return err
					}
				}
			}
		},
	}
	t.add(cmd.Flags())
	f := cmd.Flags()
	f.DurationVar(&interval, "interval", 2*time.Second, "how often the table is drawn")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	f.IntVar(&rows, "rows", 20, "most paths shown (0: all)")
	return cmd
}
