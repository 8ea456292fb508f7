package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func init() { register(newWaitCmd) }

// newWaitCmd is pilot-agent wait: the postStart hook of an injected istio-proxy, when the
// application is held until the proxy is ready, runs it.
func newWaitCmd() *cobra.Command {
	var (
		host           string
		port           uint16
		timeout        time.Duration
		period         time.Duration
		requestTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the sidecar is ready (its /healthz/ready answers 200)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := "http://" + net.JoinHostPort(host, strconv.Itoa(int(port))) + "/healthz/ready"
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			client := &http.Client{Timeout: requestTimeout}
			ticker := time.NewTicker(period)
			defer ticker.Stop()
			var last string
			for {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					return fmt.Errorf("wait: %w", err)
				}
				resp, err := client.Do(req)
				if err == nil {
					_ = resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						fmt.Fprintln(cmd.OutOrStdout(), "lucid wait: the sidecar is ready")
						return nil
					}
					last = resp.Status
				} else {
					last = err.Error()
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("wait: %s not ready after %s (last: %s)", url, timeout, last)
				case <-ticker.C:
				}
			}
		},
	}
	defHost := os.Getenv("INSTANCE_IP")
	if defHost == "" {
		defHost = "127.0.0.1"
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", defHost, "the sidecar's address (default $INSTANCE_IP, else 127.0.0.1)")
	f.Uint16Var(&port, "status-port", 15020, "the sidecar's status port")
	f.DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	f.DurationVar(&period, "period", 500*time.Millisecond, "time between checks")
	f.DurationVar(&requestTimeout, "request-timeout", 500*time.Millisecond, "timeout of one check")
	return cmd
}
