package xdsclient

import (
	"fmt"
	"strconv"
	"strings"

	listenerpb "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

const (
	tlsInspectorName = "envoy.filters.listener.tls_inspector"
	tlsInspectorURL  = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
)

func isTLSInspector(lf *listenerpb.ListenerFilter) bool {
	return lf.GetName() == tlsInspectorName || lf.GetTypedConfig().GetTypeUrl() == tlsInspectorURL
}

// chainLabel names a filter chain in an error after its index: ` "https.443.web.gw.ns"`.
func chainLabel(fc *listenerpb.FilterChain) string { return quotedName(fc.GetName()) }

// decodeServerNames validates filter_chain_match.server_names: a host name, or a
// wildcard "*.suffix" (Envoy supports no other wildcard). Names are lower-cased, as SNI
// compares case-insensitively.
func decodeServerNames(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(names))
	for i, n := range names {
		rest := strings.TrimPrefix(n, "*.")
		switch {
		case n == "":
			return nil, fmt.Errorf("server_names[%d]: empty", i)
		case n == "*":
			return nil, fmt.Errorf("server_names[%d]: %q: leave server_names empty to match every name", i, n)
		case strings.Contains(rest, "*"):
			return nil, fmt.Errorf("server_names[%d]: %q: only a leading \"*.\" wildcard is supported", i, n)
		}
		out = append(out, strings.ToLower(n))
	}
	return out, nil
}

// checkChainOverlap rejects a listener with two filter chains that match the same
// connections, as Envoy does ("multiple filter chains with the same matching rules").
func checkChainOverlap(chains []resource.FilterChain) error {
	seen := map[string]int{}
	for i, fc := range chains {
		names := fc.Match.ServerNames
		if len(names) == 0 {
			names = []string{""}
		}
		alpns := fc.Match.ApplicationProtocols
		if len(alpns) == 0 {
			alpns = []string{""}
		}
		for _, n := range names {
			for _, a := range alpns {
				k := fmt.Sprintf("%d|%s|%s|%s", fc.Match.DestinationPort, n, fc.Match.TransportProtocol, a)
				if j, ok := seen[k]; ok {
					return fmt.Errorf("filter_chains[%d]%s: matches the same connections as filter_chains[%d]%s (server name %q, transport protocol %q, application protocol %q)",
						i, quotedName(fc.Name), j, quotedName(chains[j].Name), n, fc.Match.TransportProtocol, a)
				}
				seen[k] = i
			}
		}
	}
	return nil
}

func quotedName(n string) string {
	if n == "" {
		return ""
	}
	return " " + strconv.Quote(n)
}
