// Package cli holds lucid's cobra commands. Each command lives in its own file and adds
// itself with register in an init function; the command's work lives in the package the
// command is named after (discovery → ads/store, sidecar → proxy, up → up, ...).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/version"
)

var commands []func() *cobra.Command

// register adds a subcommand constructor; call it from init.
func register(f func() *cobra.Command) { commands = append(commands, f) }

// NewRoot builds the root command with every registered subcommand.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "lucid",
		Short:         "Lucid: a service mesh in one binary that runs your Istio configuration",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(), // --version
	}
	root.SetVersionTemplate(version.Get().Text())
	for _, f := range commands {
		root.AddCommand(f())
	}
	return root
}

// Main runs the CLI and returns the process exit code. SIGINT and SIGTERM cancel the
// command's context; commands shut down in their own order.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return execute(ctx, args, os.Stdout, os.Stderr)
}

// execute runs the CLI with its output on out and errors on errOut, and returns the exit
// code: the error's own (exitCoder), else 1 for any error.
func execute(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := NewRoot()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(errOut)
	if err := root.ExecuteContext(ctx); err != nil {
		var ec exitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(errOut, "lucid:", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(errOut, "lucid:", err)
		return 1
	}
	return 0
}

// exitCoder is an error that carries its own exit status (analyze exits 1 on errors, ...).
type exitCoder interface{ ExitCode() int }
