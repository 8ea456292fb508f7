package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/controlplane/analyze"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
)

func init() { register(newAnalyzeCmd) }

// analyzeFailed is analyze's exit status when it finds errors: 79, as istioctl analyze.
type analyzeFailed struct{ errors int }

func (e analyzeFailed) Error() string {
	return fmt.Sprintf("analyze found %d error(s)", e.errors)
}
func (analyzeFailed) ExitCode() int { return 79 }

func newAnalyzeCmd() *cobra.Command {
	var (
		dir, meshFile, debug, output string
		online                       bool
		timeout                      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "analyze [-f DIR | --online]",
		Short: "Find configuration that will fail at run time, before any traffic",
		Long: `Analyze Istio configuration and report what will misbehave, with istioctl analyze's codes
and messages where Istio has them (IST0101, IST0106, IST0118, IST0130, IST0173, IST0174) and
Lucid's own LUC codes for what Istio misses (LUC0001 workloads without app/version labels,
LUC0002 weight-0 destinations, LUC0003 a VirtualService shadowed by another for the same host,
LUC0004 retries that replay requests the upstream may have processed). Each message names the
object, its file and line, and the fix.

  -f DIR     the YAML files in DIR (offline; nothing needs to run)
  --online   the configuration the running control plane serves (--discovery-debug)

Exit status 79 when any Error is found (for CI), 0 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (dir == "") == !online {
				return errors.New("give -f DIR (offline) or --online (the running control plane)")
			}
			if err := checkOutput(output, "", "json", "yaml"); err != nil {
				return err
			}
			var msgs []analyze.Message
			if online {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				b, err := (&inspect.Client{}).Get(ctx, debug, "/debug/analyze")
				if err != nil {
					return fmt.Errorf("ask the control plane at %s: %w", debug, err)
				}
				if err := json.Unmarshal(b, &msgs); err != nil {
					return fmt.Errorf("/debug/analyze: %w", err)
				}
			} else {
				mesh, err := config.LoadMeshConfig(meshFile)
				if err != nil {
					return fmt.Errorf("--mesh-config: %w", err)
				}
				objs, diags := config.LoadDir(dir)
				msgs = analyze.Analyze(objs, diags, mesh)
			}
			out := cmd.OutOrStdout()
			if output != "" {
				if msgs == nil {
					msgs = []analyze.Message{}
				}
				js, err := jsonIndent(msgs)
				if err != nil {
					return err
				}
				if err := writeDoc(out, output, js); err != nil {
					return err
				}
			} else if err := printAnalysis(out, msgs, dir, online); err != nil {
				return err
			}
			n := 0
			for _, m := range msgs {
				if m.Level == analyze.Error {
					n++
				}
			}
			if n > 0 {
				return analyzeFailed{errors: n}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&dir, "file", "f", "", "directory of Istio YAML to analyze")
	f.StringVar(&meshFile, "mesh-config", "", "MeshConfig YAML (default: Istio's defaults)")
	f.BoolVar(&online, "online", false, "analyze the running control plane's configuration")
	f.StringVar(&debug, "discovery-debug", "127.0.0.1:15014", "the control plane's debug address (with --online)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of the request to the control plane")
	f.StringVarP(&output, "output", "o", "", "output: (text), json, yaml")
	return cmd
}

func printAnalysis(w io.Writer, msgs []analyze.Message, dir string, online bool) error {
	if len(msgs) == 0 {
		where := "in " + dir
		if online {
			where = "in the running configuration"
		}
		_, err := fmt.Fprintf(w, "✔ No validation issues found %s.\n", where)
		return err
	}
	for _, m := range msgs {
		if _, err := fmt.Fprintln(w, m.String()); err != nil {
			return err
		}
	}
	return nil
}
