package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lucid-mesh/lucid/internal/diag/simulate"
)

func init() { register(newWhyCmd) }

func newWhyCmd() *cobra.Command {
	var (
		t       target
		method  string
		headers []string
		output  string
		gw      gatewayFlags
		az      authzFlags
	)
	cmd := &cobra.Command{
		Use:   "why <workload> <url>",
		Short: "Explain what a workload's sidecar (or a gateway) does with one request, from its real configuration",
		Long: `Simulate one request sent by <workload> (through its sidecar's outbound proxy) with the
configuration the sidecar really applied (admin /config_dump?include_eds), and print its path:
listener → virtual host → route (which rule won, and why each earlier one did not) → cluster →
endpoints (healthy, ejected, missing) → the outcome: the endpoint it would pick, or the status,
response flag and x-lucid-error the proxy would answer with. The simulation runs the proxy's own
matching and load-balancing code, so its explanation is the proxy's, word for word.

For a gateway (lucid gateway, Istio's istio-ingressgateway) the request is one a client
sends to the gateway itself: the URL's port picks the listener, the connection picks the
filter chain as the gateway does (an https URL is TLS with the URL's host as SNI, none for
an IP address, and ALPN h2,http/1.1), then TLS termination, route or tcp_proxy, cluster.

Path normalisation and the authorization filters (AuthorizationPolicy, RequestAuthentication)
run before routing, as in the proxy: the trace shows the normalised path and the decision, a
refusal with its status, body and x-lucid-error. --inbound simulates the request arriving at
the workload's own sidecar (its inbound port, where a sidecar's policies apply), from a
client with the identity --principal names (none: plaintext).`,
		Example: `  # a request from the curl workload, through its sidecar (lucid up examples/bookinfo-lite)
  lucid why curl http://reviews:9080/v3
  lucid why productpage reviews:9080/ -H 'end-user: jason'
  # a request a client sends to the ingress gateway
  lucid why istio-ingressgateway.istio-system http://127.0.0.1:8080/productpage
  lucid why istio-ingressgateway.istio-system https://bookinfo.example.com:8443/productpage
  lucid why istio-ingressgateway.istio-system https://127.0.0.1:8443/ --sni bookinfo.example.com
  # a request arriving at a workload's sidecar: its AuthorizationPolicies, then the app
  lucid why ratings --inbound ratings:9080/ --principal cluster.local/ns/default/sa/reviews`,
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
					m[h.Address] = simulate.HostState{Flags: h.Flags, Idle: h.Idle}
				}
				health[c.Name] = m
			}
			env := simulate.New(s, health)
			env.Principal = az.principal
			var tr *simulate.Trace
			switch {
			case az.inbound: // why_authz.go
				tr = env.WhyInbound(req)
			case strings.HasPrefix(tg.Proxy.ID, "router~") || env.IsRouter():
				tr = env.WhyGateway(req, gw.conn(cmd, req))
			default:
				tr = env.Why(req)
			}
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
	gw.addFlags(cmd)
	az.addFlags(cmd)
	return cmd
}

// gatewayFlags describe the client's connection to a gateway (ignored for sidecars).
type gatewayFlags struct {
	sni        string
	alpn       []string
	clientCert bool
}

func (g *gatewayFlags) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&g.sni, "sni", "", "gateway: the TLS server name the client sends (default: the https URL's host, none for an IP address)")
	f.StringSliceVar(&g.alpn, "alpn", nil, "gateway: the ALPN protocols the client offers (default h2,http/1.1)")
	f.BoolVar(&g.clientCert, "client-cert", false, "gateway: the client presents a certificate (for tls.mode MUTUAL servers)")
}

// conn is the client's connection: curl's for the URL, with the flags' changes.
func (g *gatewayFlags) conn(cmd *cobra.Command, req *http.Request) simulate.Conn {
	c := simulate.ClientConn(req)
	if !c.TLS {
		return c
	}
	if cmd.Flags().Changed("sni") {
		c.ServerName = strings.ToLower(g.sni)
	}
	if cmd.Flags().Changed("alpn") {
		c.ALPN = g.alpn
	}
	c.ClientCert = g.clientCert
	return c
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
