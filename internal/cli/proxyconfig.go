package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/diag/configview"
	"github.com/lucid-mesh/lucid/internal/diag/inspect"
	"github.com/lucid-mesh/lucid/internal/diag/simulate"
)

func init() { register(newProxyConfigCmd) }

// target are the flags that say where a workload's sidecar is.
type target struct {
	debug     string
	admin     string
	adminPort int
	timeout   time.Duration
}

func (t *target) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&t.debug, "discovery-debug", "127.0.0.1:15014", "the control plane's debug address, used to find workloads by name")
	f.StringVar(&t.admin, "admin", "", "read this sidecar admin API (host:port) directly instead of looking the workload up")
	f.IntVar(&t.adminPort, "admin-port", 15000, "sidecars' admin port")
	f.DurationVar(&t.timeout, "timeout", 10*time.Second, "timeout of each request to the admin or debug API")
}

func (t *target) client() *inspect.Client { return &inspect.Client{} }

func (t *target) resolve(ctx context.Context, args []string) (inspect.Target, error) {
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	return t.client().Resolve(ctx, t.debug, t.admin, name, t.adminPort)
}

// workloadArgs accepts "<workload>[.<namespace>]", optional with --admin.
func (t *target) workloadArgs(cmd *cobra.Command, args []string) error {
	if t.admin == "" && len(args) != 1 {
		return fmt.Errorf("%s needs one workload name (<workload>[.<namespace>]) or --admin host:port", cmd.CommandPath())
	}
	if len(args) > 1 {
		return fmt.Errorf("%s takes one workload name, got %d arguments", cmd.CommandPath(), len(args))
	}
	return nil
}

// snapshot reads and decodes a sidecar's config dump.
func (t *target) snapshot(ctx context.Context, args []string) (*inspect.Dump, *resource.Snapshot, inspect.Target, error) {
	tg, err := t.resolve(ctx, args)
	if err != nil {
		return nil, nil, tg, err
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	d, err := t.client().ConfigDump(ctx, tg.Admin, true)
	if err != nil {
		return nil, nil, tg, fmt.Errorf("read %s/config_dump: %w", tg.Admin, err)
	}
	s, err := d.Snapshot()
	if err != nil {
		return nil, nil, tg, fmt.Errorf("decode %s/config_dump: %w", tg.Admin, err)
	}
	return d, s, tg, nil
}

func checkOutput(o string, allowed ...string) error {
	if !slices.Contains(allowed, o) {
		return fmt.Errorf("-o %q: want one of %s", o, strings.Join(allowed, ", "))
	}
	return nil
}

func newProxyConfigCmd() *cobra.Command {
	var t target
	cmd := &cobra.Command{
		Use:     "proxy-config",
		Aliases: []string{"pc"},
		Short:   "Show a sidecar's listeners, routes, clusters and endpoints, and set its log levels",
		Long: `Show what a sidecar really runs, read from its admin API (/config_dump, /clusters), with
istioctl's columns. Name the workload as <workload>[.<namespace>] (looked up through the control
plane's debug port, --discovery-debug) or give --admin host:port.

Walk a failing request's path: listeners (which route config a port uses) → routes (which
virtual host and route) → clusters (which subset) → endpoints (which hosts, and why a cluster
has none).`,
	}
	t.addFlags(cmd)
	cmd.AddCommand(newPCListeners(&t), newPCRoutes(&t), newPCClusters(&t), newPCEndpoints(&t), newPCLog(&t), newPCSecret(&t)) // proxyconfig_secret.go
	return cmd
}

// writeResources prints raw resources as a JSON array (Envoy's field names) or YAML.
func writeResources[T proto.Message](w io.Writer, output string, es []inspect.Entry[T], keep func(name string) bool) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	n := 0
	for _, e := range es {
		if !keep(e.Name) {
			continue
		}
		b, err := inspect.ResourceJSON(e.Resource)
		if err != nil {
			return err
		}
		if n > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
		buf.Write(b)
		n++
	}
	buf.WriteString("\n]\n")
	return writeDoc(w, output, buf.Bytes())
}

// writeDoc prints JSON as is or as YAML.
func writeDoc(w io.Writer, output string, js []byte) error {
	if output == "yaml" {
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return fmt.Errorf("yaml: %w", err)
		}
		js = y
	}
	_, err := w.Write(js)
	return err
}

// rawOrTable prints, for -o json or yaml, the raw resources of the view's rows (shown
// names the decoded rows in the view's order and filter), else the view's table.
func rawOrTable[T proto.Message, R any](v *pcRead, output string, raw []inspect.Entry[T], shown []R, name func(R) string, table func() error) error {
	if output != "json" && output != "yaml" {
		return table()
	}
	set := map[string]bool{}
	for _, r := range shown {
		set[name(r)] = true
	}
	return writeResources(v.out, output, raw, func(n string) bool { return set[n] })
}

// pcView is one of proxy-config's four views of what a sidecar runs; newPCView builds its
// command: the workload argument, -o, the config dump read and decoded, then show.
type pcView struct {
	use, short string
	example    string
	aliases    []string
	outputs    []string // accepted -o values besides "" (the table)
	outputHelp string   // -o's help when the values alone do not say it
	flags      func(*pflag.FlagSet)
	check      func() error // validates the view's own flags before anything is read
	show       func(v *pcRead, output string) error
}

// pcRead is what a view shows: the sidecar's config dump, decoded.
type pcRead struct {
	ctx    context.Context
	out    io.Writer
	t      *target
	dump   *inspect.Dump
	snap   *resource.Snapshot
	target inspect.Target
}

func newPCView(t *target, v pcView) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     v.use + " <workload>",
		Aliases: v.aliases,
		Short:   v.short,
		Example: v.example,
		Args:    t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, append([]string{""}, v.outputs...)...); err != nil {
				return err
			}
			if v.check != nil {
				if err := v.check(); err != nil {
					return err
				}
			}
			d, s, tg, err := t.snapshot(cmd.Context(), args)
			if err != nil {
				return err
			}
			return v.show(&pcRead{ctx: cmd.Context(), out: cmd.OutOrStdout(), t: t, dump: d, snap: s, target: tg}, output)
		},
	}
	v.flags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "", cmp.Or(v.outputHelp, "output: (table), "+strings.Join(v.outputs, ", ")))
	return cmd
}

func newPCListeners(t *target) *cobra.Command {
	var f configview.ListenerFilter
	return newPCView(t, pcView{
		use: "listeners", aliases: []string{"listener", "l"}, outputs: []string{"short", "json", "yaml"},
		short:   "Listeners: ADDRESSES PORT MATCH DESTINATION",
		example: "  lucid proxy-config listeners curl\n  lucid proxy-config listeners curl --port 9080 -o json",
		flags: func(fl *pflag.FlagSet) {
			fl.StringVar(&f.Address, "address", "", "only listeners on this address")
			fl.Uint32Var(&f.Port, "port", 0, "only listeners on this port")
			fl.StringVar(&f.Type, "type", "", "only listeners of this type (HTTP, TCP, HTTP+TCP)")
		},
		show: func(v *pcRead, output string) error {
			return rawOrTable(v, output, v.dump.Listeners, configview.SortedListeners(v.snap, f), func(l *resource.Listener) string { return l.Name },
				func() error { return configview.Listeners(v.out, v.snap, f, output == "short") })
		},
	})
}

func newPCRoutes(t *target) *cobra.Command {
	var f configview.RouteFilter
	return newPCView(t, pcView{
		use: "routes", aliases: []string{"route", "r"}, outputs: []string{"short", "json", "yaml"},
		short:   "Routes: NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE",
		example: "  lucid proxy-config routes curl\n  lucid proxy-config routes istio-ingressgateway.istio-system",
		flags: func(fl *pflag.FlagSet) {
			fl.StringVar(&f.Name, "name", "", "only the route configuration with this name (e.g. 9080)")
		},
		show: func(v *pcRead, output string) error {
			return rawOrTable(v, output, v.dump.Routes, configview.SortedRoutes(v.snap, f), func(r *resource.RouteConfig) string { return r.Name },
				func() error { return configview.Routes(v.out, v.snap, f, output == "short") })
		},
	})
}

func newPCClusters(t *target) *cobra.Command {
	var f configview.ClusterFilter
	return newPCView(t, pcView{
		use: "clusters", aliases: []string{"cluster", "c"}, outputs: []string{"short", "json", "yaml"},
		outputHelp: "output: (table), short (names), json, yaml",
		short:      "Clusters: SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE",
		example:    "  lucid proxy-config clusters curl --fqdn reviews.default.svc.cluster.local",
		flags: func(fl *pflag.FlagSet) {
			fl.StringVar(&f.FQDN, "fqdn", "", "only clusters whose name contains this host")
			fl.IntVar(&f.Port, "port", 0, "only clusters of this port")
			fl.StringVar(&f.Subset, "subset", "", "only clusters whose name contains this subset")
			fl.StringVar(&f.Direction, "direction", "", "only inbound or outbound clusters")
		},
		check: func() error {
			if f.Direction != "" && f.Direction != "inbound" && f.Direction != "outbound" {
				return fmt.Errorf("--direction %q: want inbound or outbound", f.Direction)
			}
			return nil
		},
		show: func(v *pcRead, output string) error {
			return rawOrTable(v, output, v.dump.Clusters, configview.SortedClusters(v.snap, f), func(c *resource.Cluster) string { return c.Name }, func() error {
				if output == "short" {
					return configview.ClusterNames(v.out, v.snap, f)
				}
				return configview.Clusters(v.out, v.snap, f)
			})
		},
	})
}

func newPCEndpoints(t *target) *cobra.Command {
	var f configview.EndpointFilter
	return newPCView(t, pcView{
		use: "endpoints", aliases: []string{"endpoint", "ep"}, outputs: []string{"json", "yaml"},
		short:   "Endpoints: ENDPOINT STATUS OUTLIER CHECK CLUSTER, and why a cluster has none",
		example: "  lucid proxy-config endpoints curl\n  lucid proxy-config endpoints curl --cluster 'outbound|9080|v3|reviews.default.svc.cluster.local'",
		flags: func(fl *pflag.FlagSet) {
			fl.StringVar(&f.Address, "address", "", "only endpoints with this IP")
			fl.IntVar(&f.Port, "port", 0, "only endpoints on this port")
			fl.StringVar(&f.Cluster, "cluster", "", "only endpoints of this cluster")
			fl.StringVar(&f.Status, "status", "", "only endpoints with this status (HEALTHY, UNHEALTHY, DRAINING, ...)")
		},
		show: func(v *pcRead, output string) error {
			ctx, cancel := context.WithTimeout(v.ctx, v.t.timeout)
			defer cancel()
			cs, err := v.t.client().Clusters(ctx, v.target.Admin)
			if err != nil {
				return fmt.Errorf("read %s/clusters: %w", v.target.Admin, err)
			}
			rows := configview.EndpointRows(cs, f)
			empty := configview.EmptyClusters(simulate.New(v.snap, nil), f)
			if output == "json" || output == "yaml" {
				js, err := jsonIndent(struct {
					Endpoints []configview.EndpointRow  `json:"endpoints"`
					Empty     []configview.EmptyCluster `json:"clusters_without_endpoints"`
				}{rows, empty})
				if err != nil {
					return err
				}
				return writeDoc(v.out, output, js)
			}
			return configview.Endpoints(v.out, rows, empty)
		},
	})
}

func jsonIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return buf.Bytes(), nil
}

func newPCLog(t *target) *cobra.Command {
	var (
		level string
		reset bool
		dur   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "log <workload>",
		Short: "Show or set a sidecar's log levels (/logging), optionally for a while",
		Long: `Show or set a sidecar's log levels through its admin /logging endpoint, with Envoy's
logger names (http, router, upstream, config, connection, pool, ...), and the changes still
to revert.

  --level debug                 every logger
  --level http:debug,router:trace   some loggers
  --for 5m                      the change reverts by itself after 5 minutes: the sidecar
                                keeps the timer (/logging?...&for=5m), so it reverts even
                                if this command is interrupted; each timed change reverts
                                what it set, and the listing shows the reverts to come
  -r                            reset every logger to warning (istioctl's default)`,
		Example: `  lucid proxy-config log productpage
  lucid proxy-config log productpage --level router:debug --for 5m`,
		Args: t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case reset && level != "":
				return errors.New("give --level or -r, not both")
			case dur != 0 && level == "":
				return errors.New("--for needs --level")
			case dur < 0 || dur > 24*time.Hour:
				return fmt.Errorf("--for %s: want a duration up to 24h", dur)
			}
			if reset {
				level = "warning"
			}
			tg, err := t.resolve(cmd.Context(), args)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), t.timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			if level == "" {
				l, err := t.client().LogLevels(ctx, tg.Admin)
				if err != nil {
					return err
				}
				_, err = out.Write(l.Text)
				return err
			}
			ch, err := inspect.ParseLogChange(level)
			if err != nil {
				return err
			}
			before, after, err := t.client().SetLogLevels(ctx, tg.Admin, ch, dur)
			if err != nil {
				return err
			}
			if _, err := out.Write(after.Text); err != nil {
				return err
			}
			if dur == 0 {
				return nil
			}
			who := "--admin " + tg.Admin
			if len(args) > 0 {
				who = args[0]
			}
			_, err = fmt.Fprintf(out, "These levels revert by themselves in %s (at %s): the sidecar keeps the timer.\nTo revert now: lucid proxy-config log %s --level %s\n",
				dur, time.Now().Add(dur).Format("15:04:05"), who, before.Restore())
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&level, "level", "", "level for every logger (debug) or per logger (http:debug,router:trace)")
	fl.BoolVarP(&reset, "reset", "r", false, "reset every logger to warning")
	fl.DurationVar(&dur, "for", 0, "revert the change after this long (e.g. 5m)")
	return cmd
}
