package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/diag/tapview"
)

func init() { register(newTapCmd) }

// tapFlags are the flags tap and top share: where to read and what to ask for.
type tapFlags struct {
	debug, admin, namespace string
	filter                  tapview.Filter
}

func (t *tapFlags) add(f *pflag.FlagSet) {
	f.StringVar(&t.debug, "discovery-debug", "127.0.0.1:15014", "the control plane's debug address; it relays the tap")
	f.StringVar(&t.admin, "admin", "", "read this proxy's admin API (host:port) directly instead of through the control plane")
	f.StringVarP(&t.namespace, "namespace", "n", "", "the workload's namespace (default: default, or the name's .<namespace>)")
	f.StringVar(&t.filter.To, "to", "", "only requests to this service (reviews, reviews.default or its full host)")
	f.StringVar(&t.filter.Path, "path", "", "only requests whose path starts with this prefix")
	f.StringVar(&t.filter.Method, "method", "", "only requests with this method")
	f.StringVar(&t.filter.Status, "status", "", "only these statuses: codes or classes, e.g. 5xx or 404,503")
	f.StringVar(&t.filter.Flags, "flags", "", "only requests with any of these Envoy response flags, e.g. UH,UC")
	f.StringVar(&t.filter.Direction, "direction", "", "only inbound or outbound requests")
	f.BoolVar(&t.filter.ErrorsOnly, "errors", false, "only failed requests (status ≥ 500 or any response flag)")
	f.IntVar(&t.filter.MaxRPS, "max-rps", 0, "most requests a second the proxy sends this tap (1 to 1000; default 100); the rest are counted as not shown")
}

func (t *tapFlags) source(workload string) tapview.Source {
	if t.namespace != "" {
		workload += "." + t.namespace
	}
	return tapview.Source{Debug: t.debug, Workload: workload, Admin: t.admin}
}

func newTapCmd() *cobra.Command {
	var (
		t      tapFlags
		output string
		count  int
	)
	cmd := &cobra.Command{
		Use:   "tap <workload>",
		Short: "Watch the requests one sidecar or gateway handles, live",
		Long: `Stream the requests a workload's proxy finishes, in both directions, one line each:
time, direction, method, authority and path, status, Envoy's response flags, duration, the
upstream endpoint and, for a failure, Lucid's explanation (the x-lucid-error header).

The control plane relays the proxy's tap, so only its address is needed (--discovery-debug);
--admin reads a proxy directly. Filters are applied in the proxy. The proxy sends at most
--max-rps requests a second to a tap and never waits for it: what it leaves out is counted
and reported. A tap costs the proxy nothing while nobody listens. Ctrl-C stops it.`,
		Example: `  lucid tap productpage
  lucid tap productpage --to reviews --status 5xx -o wide
  lucid tap istio-ingressgateway -n istio-system --path /productpage -o json --count 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := tapview.CheckFormat(output); err != nil {
				return err
			}
			body, err := tapview.Open(cmd.Context(), http.DefaultClient, t.source(args[0]), t.filter)
			if err != nil {
				return err
			}
			defer body.Close()
			p := &tapview.Printer{W: cmd.OutOrStdout(), Format: output}
			n := 0
			err = tapview.Read(body, func(ev contract.TapEvent) error {
				if err := p.Print(ev); err != nil {
					return err
				}
				if n++; count > 0 && n >= count {
					return errEnough
				}
				return nil
			})
			return tapEnded(cmd, err)
		},
	}
	t.add(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "", "output: (one line), wide, json")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many requests (0: until interrupted)")
	return cmd
}

// errEnough ends a stream once the requests asked for were shown.
var errEnough = errors.New("enough")

// tapEnded turns the end of a stream into the command's result: Ctrl-C and --count are
// a clean stop; a stream the proxy ended is said so.
func tapEnded(cmd *cobra.Command, err error) error {
	switch {
	case errors.Is(err, errEnough), errors.Is(cmd.Context().Err(), context.Canceled):
		return nil
	case err != nil:
		return fmt.Errorf("tap: %w", err)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "tap: the stream ended (the proxy or the control plane stopped)")
	return nil
}
