package cli

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newDashboardCmd) }

func newDashboardCmd() *cobra.Command {
	var (
		debug string
		open  bool
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print (or open) the address of the control plane's web dashboard",
		Long: `The control plane serves a web dashboard on its debug port: the mesh's live topology
(each edge's rate, success rate and p99 over the last minute, red with the cause when it
fails), a page per workload (golden signals, live requests, configuration, sync status,
readiness) and the analyzers' findings. This command checks that the control plane at
--discovery-debug answers and prints the dashboard's URL; --open also opens it in a browser.`,
		Example: `  lucid dashboard          # with lucid up examples/bookinfo-lite running
  lucid dashboard --open`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u := "http://" + debug + "/dashboard/"
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return fmt.Errorf("--discovery-debug %q: %w", debug, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("no control plane answers at %s (is `lucid up` or `lucid discovery` running? see --discovery-debug): %w", debug, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("the control plane at %s has no dashboard (%s): is it an older lucid?", debug, resp.Status)
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			if open {
				return openBrowser(u)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&debug, "discovery-debug", "127.0.0.1:15014", "the control plane's debug address, where the dashboard is served")
	cmd.Flags().BoolVar(&open, "open", false, "open the dashboard in the desktop's browser")
	return cmd
}

// openBrowser hands u to the desktop's opener.
func openBrowser(u string) error {
	name, args := "xdg-open", []string{u}
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", u}
	}
	if err := exec.Command(name, args...).Start(); err != nil {
		return fmt.Errorf("--open: %s: %w (open %s yourself)", name, err, u)
	}
	return nil
}
