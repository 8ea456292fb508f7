package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/simulate"
)

func init() { register(newWhyCmd) }

func newWhyCmd() *cobra.Command {
	var (
		t       target
		method  string
		headers []string
		output  string
	)
	cmd := &cobra.Command{
		Use:   "why <workload> <url>",
		Short: "Explain what a workload's sidecar does with one request, from its real configuration",
		Long: `Simulate one request sent by <workload> (through its sidecar's outbound proxy) with the
configuration the sidecar really applied (admin /config_dump?include_eds), and print its path:
listener → virtual host → route (which rule won, and why each earlier one did not) → cluster →
endpoints (healthy, ejected, missing) → the outcome: the endpoint it would pick, or the status,
response flag and x-lucid-error the proxy would answer with. The simulation runs the proxy's own
matching and load-balancing code, so its explanation is the proxy's, word for word.

  lucid why curl http://reviews:9080/v3
  lucid why productpage reviews:9080/ -H 'end-user: jason'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if t.admin != "" && len(args) == 1 {
				return nil
			}
			if len(args) != 2 {
				return fmt.Errorf("%s needs a workload and a URL (or --admin host:port and a URL)", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "", "json", "yaml"); err != nil {
				return err
			}
			rawURL := args[len(args)-1]
			req, err := whyRequest(method, rawURL, headers)
			if err != nil {
				return err
			}
			_, s, tg, err := t.snapshot(cmd.Context(), args[:len(args)-1])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), t.timeout)
			defer cancel()
			health := map[string]map[string]simulate.HostState{}
			cs, err := t.client().Clusters(ctx, tg.Admin)
			if err != nil {
				return fmt.Errorf("read %s/clusters: %w", tg.Admin, err)
			}
			for _, c := range cs {
				m := map[string]simulate.HostState{}
				for _, h := range c.Hosts {
					m[h.Address] = simulate.HostState{Flags: h.Flags}
				}
				health[c.Name] = m
			}
			tr := simulate.New(s, health).Why(req)
			out := cmd.OutOrStdout()
			if output != "" {
				js, err := jsonIndent(tr)
				if err != nil {
					return err
				}
				return writeDoc(out, output, js)
			}
			return simulate.Render(out, tr)
		},
	}
	t.addFlags(cmd)
	f := cmd.Flags()
	f.StringVarP(&method, "request", "X", "GET", "request method")
	f.StringArrayVarP(&headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	f.StringVarP(&output, "output", "o", "", "output: (text), json, yaml")
	return cmd
}

// whyRequest builds the simulated request: an absolute URI, as an app sends it to its
// sidecar's explicit proxy ("http://" is added when the URL has no scheme).
func whyRequest(method, rawURL string, headers []string) (*http.Request, error) {
	if !strings.Contains(rawURL, "://") {
		rawURL = "http://" + rawURL
	}
	req, err := http.NewRequest(strings.ToUpper(method), rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", rawURL, err)
	}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	return req, nil
}
