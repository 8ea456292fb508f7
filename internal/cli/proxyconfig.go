package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
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
	cmd.AddCommand(newPCListeners(&t), newPCRoutes(&t), newPCClusters(&t), newPCEndpoints(&t), newPCLog(&t))
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

func nameSet[T any](xs []T, name func(T) string) func(string) bool {
	set := map[string]bool{}
	for _, x := range xs {
		set[name(x)] = true
	}
	return func(n string) bool { return set[n] }
}

func newPCListeners(t *target) *cobra.Command {
	var (
		f      configview.ListenerFilter
		output string
	)
	cmd := &cobra.Command{
		Use:     "listeners <workload>",
		Aliases: []string{"listener", "l"},
		Short:   "Listeners: ADDRESSES PORT MATCH DESTINATION",
		Args:    t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "short", "json", "yaml"); err != nil {
				return err
			}
			d, s, _, err := t.snapshot(cmd.Context(), args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json", "yaml":
				keep := nameSet(configview.SortedListeners(s, f), func(l *resource.Listener) string { return l.Name })
				return writeResources(out, output, d.Listeners, keep)
			}
			return configview.Listeners(out, s, f, output == "short")
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Address, "address", "", "only listeners on this address")
	fl.Uint32Var(&f.Port, "port", 0, "only listeners on this port")
	fl.StringVar(&f.Type, "type", "", "only listeners of this type (HTTP, TCP, HTTP+TCP)")
	fl.StringVarP(&output, "output", "o", "", "output: (table), short, json, yaml")
	return cmd
}

func newPCRoutes(t *target) *cobra.Command {
	var (
		f      configview.RouteFilter
		output string
	)
	cmd := &cobra.Command{
		Use:     "routes <workload>",
		Aliases: []string{"route", "r"},
		Short:   "Routes: NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE",
		Args:    t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "short", "json", "yaml"); err != nil {
				return err
			}
			d, s, _, err := t.snapshot(cmd.Context(), args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json", "yaml":
				keep := nameSet(configview.SortedRoutes(s, f), func(r *resource.RouteConfig) string { return r.Name })
				return writeResources(out, output, d.Routes, keep)
			}
			return configview.Routes(out, s, f, output == "short")
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Name, "name", "", "only the route configuration with this name (e.g. 9080)")
	fl.StringVarP(&output, "output", "o", "", "output: (table), short, json, yaml")
	return cmd
}

func newPCClusters(t *target) *cobra.Command {
	var (
		f      configview.ClusterFilter
		output string
	)
	cmd := &cobra.Command{
		Use:     "clusters <workload>",
		Aliases: []string{"cluster", "c"},
		Short:   "Clusters: SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE",
		Args:    t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "short", "json", "yaml"); err != nil {
				return err
			}
			if f.Direction != "" && f.Direction != "inbound" && f.Direction != "outbound" {
				return fmt.Errorf("--direction %q: want inbound or outbound", f.Direction)
			}
			d, s, _, err := t.snapshot(cmd.Context(), args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch output {
			case "json", "yaml":
				keep := nameSet(configview.SortedClusters(s, f), func(c *resource.Cluster) string { return c.Name })
				return writeResources(out, output, d.Clusters, keep)
			case "short":
				return configview.ClusterNames(out, s, f)
			}
			return configview.Clusters(out, s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.FQDN, "fqdn", "", "only clusters whose name contains this host")
	fl.IntVar(&f.Port, "port", 0, "only clusters of this port")
	fl.StringVar(&f.Subset, "subset", "", "only clusters whose name contains this subset")
	fl.StringVar(&f.Direction, "direction", "", "only inbound or outbound clusters")
	fl.StringVarP(&output, "output", "o", "", "output: (table), short (names), json, yaml")
	return cmd
}

func newPCEndpoints(t *target) *cobra.Command {
	var (
		f      configview.EndpointFilter
		output string
	)
	cmd := &cobra.Command{
		Use:     "endpoints <workload>",
		Aliases: []string{"endpoint", "ep"},
		Short:   "Endpoints: ENDPOINT STATUS OUTLIER CHECK CLUSTER, and why a cluster has none",
		Args:    t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "short", "json", "yaml"); err != nil {
				return err
			}
			_, s, tg, err := t.snapshot(cmd.Context(), args)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), t.timeout)
			defer cancel()
			cs, err := t.client().Clusters(ctx, tg.Admin)
			if err != nil {
				return fmt.Errorf("read %s/clusters: %w", tg.Admin, err)
			}
			rows := configview.EndpointRows(cs, f)
			empty := configview.EmptyClusters(simulate.New(s, nil), f)
			out := cmd.OutOrStdout()
			switch output {
			case "json", "yaml":
				js, err := jsonIndent(struct {
					Endpoints []configview.EndpointRow  `json:"endpoints"`
					Empty     []configview.EmptyCluster `json:"clusters_without_endpoints"`
				}{rows, empty})
				if err != nil {
					return err
				}
				return writeDoc(out, output, js)
			}
			return configview.Endpoints(out, rows, empty)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Address, "address", "", "only endpoints with this IP")
	fl.IntVar(&f.Port, "port", 0, "only endpoints on this port")
	fl.StringVar(&f.Cluster, "cluster", "", "only endpoints of this cluster")
	fl.StringVar(&f.Status, "status", "", "only endpoints with this status (HEALTHY, UNHEALTHY, DRAINING, ...)")
	fl.StringVarP(&output, "output", "o", "", "output: (table), json, yaml")
	return cmd
}

var errNoChange = errors.New("nothing to change")

func jsonIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return buf.Bytes(), nil
}

// logChange is what --level asks for: a level for every logger and/or some loggers.
type logChange struct {
	all   string            // "" when not set
	paths []string          // "name:level"
	names map[string]string // name → level
}

// parseLogLevels parses istioctl's --level: "debug", "http:debug,router:trace", or both
// ("info,http:debug": every logger info, then http debug).
func parseLogLevels(s string) (*logChange, error) {
	c := &logChange{names: map[string]string{}}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, lvl, per := strings.Cut(item, ":")
		if !per {
			name, lvl = "", item
		}
		if _, err := logging.ParseLevel(lvl); err != nil {
			return nil, fmt.Errorf("--level %q: unrecognized level %q (want trace, debug, info, warning, error, critical, off)", s, lvl)
		}
		if !per {
			c.all = lvl
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("--level %q: empty logger name", s)
		}
		c.paths = append(c.paths, name+":"+lvl)
		c.names[name] = lvl
	}
	if c.all == "" && len(c.paths) == 0 {
		return nil, fmt.Errorf("--level %q: %w", s, errNoChange)
	}
	return c, nil
}

// parseLoggerList reads /logging's listing ("  name: level" lines).
func parseLoggerList(body string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		name, lvl, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if ok {
			out[name] = lvl
		}
	}
	return out
}

// levelsFlag renders a listing back as a --level value that restores it.
func levelsFlag(levels map[string]string) string {
	count := map[string]int{}
	for _, l := range levels {
		count[l]++
	}
	common, best := "", -1
	for l, n := range count {
		if n > best || (n == best && l < common) {
			common, best = l, n
		}
	}
	parts := []string{common}
	names := make([]string, 0, len(levels))
	for n := range levels {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if levels[n] != common {
			parts = append(parts, n+":"+levels[n])
		}
	}
	return strings.Join(parts, ",")
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
logger names (http, router, upstream, config, connection, pool, ...).

  --level debug                 every logger
  --level http:debug,router:trace   some loggers
  --for 5m                      the change reverts by itself after 5 minutes: the sidecar
                                keeps the timer (/logging?...&for=5m), so it reverts even
                                if this command is interrupted
  -r                            reset every logger to warning (istioctl's default)`,
		Args: t.workloadArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
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
			tg, err := t.resolve(ctx, args)
			if err != nil {
				return err
			}
			c := t.client()
			rctx, cancel := context.WithTimeout(ctx, t.timeout)
			defer cancel()
			listing, err := c.Get(rctx, tg.Admin, "/logging")
			if err != nil {
				return fmt.Errorf("read %s/logging: %w", tg.Admin, err)
			}
			out := cmd.OutOrStdout()
			if level == "" {
				_, err := out.Write(listing)
				return err
			}
			ch, err := parseLogLevels(level)
			if err != nil {
				return err
			}
			before := parseLoggerList(string(listing))
			for name := range ch.names {
				if _, ok := before[name]; !ok {
					return fmt.Errorf("unrecognized logger name: %s", name)
				}
			}
			var queries []string
			if ch.all != "" {
				queries = append(queries, "level="+ch.all)
			}
			if len(ch.paths) > 0 {
				queries = append(queries, "paths="+strings.Join(ch.paths, ","))
			}
			var body []byte
			selfTimed := dur > 0
			for _, q := range queries {
				if dur > 0 && selfTimed {
					body, err = c.Post(rctx, tg.Admin, "/logging?"+q+"&for="+dur.String())
					var he *inspect.HTTPError
					if errors.As(err, &he) && he.Status == 400 && strings.Contains(he.Body, "invalid number of parameters") {
						selfTimed = false // an older sidecar without for=: this command reverts
					} else if err != nil {
						return fmt.Errorf("set levels on %s: %w", tg.Admin, err)
					} else {
						continue
					}
				}
				body, err = c.Post(rctx, tg.Admin, "/logging?"+q)
				if err != nil {
					return fmt.Errorf("set levels on %s: %w", tg.Admin, err)
				}
			}
			if _, err := out.Write(body); err != nil {
				return err
			}
			if dur == 0 {
				return nil
			}
			restore := levelsFlag(before)
			who := "--admin " + tg.Admin
			if len(args) > 0 {
				who = args[0]
			}
			manual := fmt.Sprintf("lucid proxy-config log %s --level %s", who, restore)
			if selfTimed {
				fmt.Fprintf(out, "These levels revert by themselves in %s (at %s): the sidecar keeps the timer.\nTo revert now: %s\n",
					dur, time.Now().Add(dur).Format("15:04:05"), manual)
				return nil
			}
			fmt.Fprintf(out, "This sidecar cannot revert by itself; waiting %s to revert (Ctrl-C reverts now).\nIf this command is killed, revert with: %s\n", dur, manual)
			timer := time.NewTimer(dur)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
			back, err := parseLogLevels(restore)
			if err != nil {
				return err
			}
			wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), t.timeout)
			defer wcancel()
			if back.all != "" {
				if _, err := c.Post(wctx, tg.Admin, "/logging?level="+back.all); err != nil {
					return fmt.Errorf("revert levels on %s (run %s): %w", tg.Admin, manual, err)
				}
			}
			if len(back.paths) > 0 {
				if _, err := c.Post(wctx, tg.Admin, "/logging?paths="+strings.Join(back.paths, ",")); err != nil {
					return fmt.Errorf("revert levels on %s (run %s): %w", tg.Admin, manual, err)
				}
			}
			fmt.Fprintln(out, "Levels reverted.")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&level, "level", "", "level for every logger (debug) or per logger (http:debug,router:trace)")
	fl.BoolVarP(&reset, "reset", "r", false, "reset every logger to warning")
	fl.DurationVar(&dur, "for", 0, "revert the change after this long (e.g. 5m)")
	return cmd
}
