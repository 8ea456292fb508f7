package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/controlplane/analyze"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
)

func init() { register(newAnalyzeCmd) }

// analyzeError is analyze's exit status when it finds errors: 79, as istioctl analyze.
type analyzeError struct{ errors int }

func (e analyzeError) Error() string {
	return fmt.Sprintf("analyze found %d error(s)", e.errors)
}
func (analyzeError) ExitCode() int { return 79 }

func newAnalyzeCmd() *cobra.Command {
	var (
		paths                          []string
		meshFile, debug, output, scope string
		online, all                    bool
		timeout                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "analyze [-f PATH]... [PATH]... | --online",
		Short: "Find configuration that will fail at run time, before any traffic",
		Long: `Analyze Istio configuration and report what will misbehave, as istioctl analyze does: the
same codes, levels and texts where Istio has an analyzer (IST0101 references not found, IST0106
schema errors, IST0109/IST0110/IST0111 conflicts, IST0112, IST0118, IST0128/IST0129, IST0130/
IST0131 unreachable rules, IST0132, IST0134, IST0138, IST0140, IST0145, IST0149, IST0161,
IST0162, IST0165, IST0167, IST0173, IST0174, IST0177, ...) and Lucid's own LUC codes for what
Istio has no code for (LUC0001 workloads without app/version labels, LUC0002 weight-0
destinations, LUC0004 retries that replay requests the upstream may have processed, LUC0005
Gateway servers the gateway drops, LUC0006 YAML syntax errors, ...). Each message names the
object (Kind namespace/name), the file and line of the field, and, where Lucid can tell, what
happens at run time and the fix.

  -f PATH    YAML files or directories (offline; nothing needs to run). Kubernetes Services,
             Pods, Namespaces, Secrets and Nodes in them are the cluster the analyzers read.
             As istioctl does offline, Istio's default ingress gateway (istio=ingressgateway
             in istio-system) is assumed unless the files define one; analyze says so.
  --online   the configuration the running control plane serves (--discovery-debug)

Output: istioctl's log format, or -o json|yaml with istioctl's keys (code, documentationUrl,
level, message, origin, reference) and Lucid's (kind, name, namespace, file, line, field,
detail, fix). Exit status 79 when any Error is found (for CI), 1 for a bad invocation (a
path that does not exist), 0 otherwise.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			paths = append(paths, args...)
			if (len(paths) == 0) == !online {
				return errors.New("give -f PATH (files or directories, offline) or --online (the running control plane)")
			}
			if output == "log" {
				output = ""
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
				files, readDiags, err := readAnalyzePaths(paths)
				if err != nil {
					return err
				}
				mesh, err := config.LoadMeshConfig(meshFile)
				if err != nil {
					return fmt.Errorf("--mesh-config: %w", err)
				}
				objs, diags := config.ParseFilesWith(files, config.Analysis)
				opts := analyze.Options{Mesh: mesh, Offline: true}
				if len(paths) == 1 {
					if fi, err := os.Stat(paths[0]); err == nil && fi.IsDir() {
						opts.ConfigDir = paths[0] // local mode: Gateway credentials in its credentials/
					}
				}
				res := analyze.Run(objs, append(readDiags, diags...), opts)
				if res.DefaultIngress != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Note:", res.DefaultIngress)
				}
				msgs = res.Messages
			}
			if scope != "" && !all {
				msgs = inNamespace(msgs, scope)
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
			} else if err := printAnalysis(out, cmd.ErrOrStderr(), msgs, paths, online); err != nil {
				return err
			}
			n := 0
			for _, m := range msgs {
				if m.Level == analyze.Error {
					n++
				}
			}
			if n > 0 {
				return analyzeError{errors: n}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&paths, "file", "f", nil, "YAML file or directory to analyze (repeatable; directories recursively)")
	f.StringVar(&meshFile, "mesh-config", "", "MeshConfig YAML (default: Istio's defaults)")
	f.StringVar(&meshFile, "meshConfigFile", "", "the same as --mesh-config (istioctl's name)")
	f.BoolVar(&online, "online", false, "analyze the running control plane's configuration")
	f.StringVar(&debug, "discovery-debug", "127.0.0.1:15014", "the control plane's debug address (with --online)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of the request to the control plane")
	f.StringVarP(&output, "output", "o", "", "output: log (default), json, yaml")
	f.StringVarP(&scope, "namespace", "n", "", "report only messages about objects in this namespace (and cluster-scoped ones)")
	f.BoolVarP(&all, "all-namespaces", "A", false, "report every namespace (the default)")
	return cmd
}

// readAnalyzePaths reads the YAML files of every path, named as given (a directory's files
// as the directory joined with their path in it), as istioctl analyze names them. A path
// that does not exist is a usage error.
func readAnalyzePaths(paths []string) ([]config.File, []config.Diagnostic, error) {
	var files []config.File
	var diags []config.Diagnostic
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil, fmt.Errorf("-f %s: no such file or directory", p)
			}
			return nil, nil, fmt.Errorf("-f %s: %w", p, err)
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, nil, fmt.Errorf("-f %s: %w", p, err)
			}
			files = append(files, config.File{Name: p, Data: data})
			continue
		}
		read, ds := config.ReadDir(p)
		for _, f := range read {
			f.Name = filepath.ToSlash(filepath.Join(p, f.Name))
			files = append(files, f)
		}
		for _, d := range ds {
			if d.File != "" {
				d.File = filepath.ToSlash(filepath.Join(p, d.File))
			}
			diags = append(diags, d)
		}
	}
	return files, diags, nil
}

// inNamespace keeps the messages about objects in ns, cluster-scoped objects and no object
// (istioctl analyze -n).
func inNamespace(msgs []analyze.Message, ns string) []analyze.Message {
	var out []analyze.Message
	for _, m := range msgs {
		if m.Namespace == "" || m.Namespace == ns || m.Kind == config.KindNamespace && m.Name == ns {
			out = append(out, m)
		}
	}
	return out
}

func printAnalysis(w, errw io.Writer, msgs []analyze.Message, paths []string, online bool) error {
	if len(msgs) == 0 {
		where := "in " + strings.Join(paths, ", ")
		if online {
			where = "in the running configuration"
		}
		_, err := fmt.Fprintf(errw, "✔ No validation issues found %s.\n", where)
		return err
	}
	for _, m := range msgs {
		if _, err := fmt.Fprintln(w, m.String()); err != nil {
			return err
		}
	}
	return nil
}
