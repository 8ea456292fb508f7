package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/local/up"
)

func init() { register(newUpCmd) }

func newUpCmd() *cobra.Command {
	opts := up.Options{Load: config.LoadDir}
	cmd := &cobra.Command{
		Use:   "up DIR",
		Short: "Run a local mesh from a directory of Istio YAML: discovery, sidecars and apps",
		Long: `Run a local mesh from a directory of Istio YAML.

lucid up starts the control plane (lucid discovery --config-dir DIR) and, once it serves the
configuration, one sidecar per WorkloadEntry on the entry's loopback address, each workload's
app (the command line in its lucid.dev/app annotation) and the gateways; it streams their logs with a prefix per process and prints where
to send requests. Ctrl-C stops everything: gateways and apps, then sidecars, then discovery,
at once when no request is in flight (a proxy lets requests in flight finish, for up to 5 s,
and up says what it waits for).`,
		Example: `  lucid up examples/bookinfo-lite
  # then, in another terminal: through the ingress gateway, and from inside the mesh
  # (the client workload "curl" has its sidecar on 127.0.10.9)
  curl http://127.0.0.1:8080/productpage
  curl -x http://127.0.10.9:15001 http://productpage:9080/
  # each workload in its own network namespace, its traffic captured (root, Linux)
  sudo lucid up --capture examples/bookinfo-lite
  sudo lucid exec curl -- curl -s http://productpage:9080/`,
		Args: upArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			opts.Out = cmd.OutOrStdout()
			opts.Color = isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == ""
			return up.Run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.LogLevel, "log-level", "info", "log level for discovery and the sidecars")
	f.StringVar(&opts.GRPCAddr, "grpc-addr", "127.0.0.1:15010", "discovery's ADS (gRPC) address")
	f.StringVar(&opts.DebugAddr, "debug-addr", "127.0.0.1:15014", "discovery's debug HTTP address")
	f.DurationVar(&opts.ReadyTimeout, "ready-timeout", 0, "how long to wait for each process to be ready (default 15s)")
	addCaptureFlags(f, &opts) // exec.go
	return cmd
}

// upArgs wants exactly the config directory, and says what it is when it is missing.
func upArgs(_ *cobra.Command, args []string) error {
	switch len(args) {
	case 1:
		return nil
	case 0:
		return errors.New("up needs the directory of Istio YAML to run (its WorkloadEntries become sidecars and apps); try: lucid up examples/bookinfo-lite")
	}
	return fmt.Errorf("up takes one directory, got %d arguments (%s); try: lucid up examples/bookinfo-lite", len(args), strings.Join(args, " "))
}

// isTerminal reports whether f is a character device (a terminal, not a pipe or file).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
