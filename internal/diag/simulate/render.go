package simulate

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// Render prints a trace for people:
//
//	GET http://reviews:9080/v3
//	  listener      0.0.0.0_9080 (outbound listener for port 9080)
//	  route config  9080
//	  virtual host  reviews.default.svc.cluster.local:9080
//	  routes        1. "v3" prefix "/v3": matched
//	  route         v3 (VirtualService reviews.default)
//	  cluster       outbound|9080|v3|reviews.default.svc.cluster.local (EDS, subset v3, selects version=v3)
//	  endpoints     none
//	  outcome       503 UH, body "no healthy upstream"
//	  x-lucid-error UH: subset "v3" of ... selects 0 of 3 endpoints (...)
func Render(w io.Writer, t *Trace) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", t.Method, t.URL)
	line := func(k, v string) { fmt.Fprintf(&b, "  %-14s%s\n", k, v) }
	if t.Listener == "" {
		line("listener", "none ("+t.ListenerNote+")")
	} else {
		line("listener", fmt.Sprintf("%s (%s)", t.Listener, t.ListenerNote))
	}
	if t.Connection != "" {
		line("connection", t.Connection)
	}
	if t.FilterChain != "" {
		line("filter chain", t.FilterChain)
	}
	if t.TLS != "" {
		line("tls", t.TLS)
	}
	if t.Path != "" {
		line("path", t.Path)
	}
	if t.Authz != "" {
		line("authorization", t.Authz)
	}
	if t.RouteConfig != "" {
		line("route config", t.RouteConfig)
	}
	switch {
	case t.VirtualHost != "":
		line("virtual host", t.VirtualHost)
	case t.UnmatchedDomain:
		line("virtual host", "none matches the authority")
	}
	for i, v := range t.Routes {
		k := ""
		if i == 0 {
			k = "routes"
		}
		line(k, fmt.Sprintf("%d. %q (%s): %s", i+1, v.Name, v.Match, v.Reason))
	}
	if t.Route != "" {
		r := t.Route
		if t.VirtualService != "" {
			r += " (VirtualService " + t.VirtualService + ")"
		}
		line("route", r)
	}
	for _, c := range t.Candidates {
		line("cluster", describeCandidate(c))
		if !c.Exists {
			line("", "does not exist on this proxy")
			continue
		}
		if len(c.Endpoints) == 0 {
			if c.Type == "ORIGINAL_DST" {
				line("endpoints", "the request's original destination")
			} else {
				line("endpoints", "none")
			}
		}
		for i, ep := range c.Endpoints {
			k := ""
			if i == 0 {
				k = "endpoints"
			}
			line(k, describeEndpoint(ep))
		}
		if len(t.Candidates) > 1 {
			line("", "→ "+c.Outcome.Short())
		}
	}
	o := t.Outcome
	switch {
	case len(o.Split) > 0:
		for i, sp := range o.Split {
			k := ""
			if i == 0 {
				k = "outcome"
			}
			line(k, sp)
		}
	case o.Forwarded():
		line("outcome", "forwarded to "+o.Endpoint)
	case o.Closed != "":
		line("outcome", "connection closed, no HTTP response: "+o.Closed)
	case o.Body != "":
		line("outcome", fmt.Sprintf("%d %s, body %q", o.Status, dashIfEmpty(o.Flag), o.Body))
	case o.Flag != "":
		line("outcome", fmt.Sprintf("%d %s, empty body", o.Status, o.Flag))
	default:
		line("outcome", fmt.Sprintf("%d", o.Status))
	}
	switch {
	case o.LucidError != "" && o.Closed != "":
		line("access log", o.LucidError) // no response to carry x-lucid-error
	case o.LucidError != "":
		line("x-lucid-error", o.LucidError)
	}
	if o.Counter != "" {
		line("counted in", o.Counter)
	}
	if o.Note != "" {
		line("note", o.Note)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func describeCandidate(c Candidate) string {
	s := c.Cluster
	if s == "" {
		s = `""`
	}
	var parts []string
	if c.Weight > 0 || c.Percent != 100 {
		parts = append(parts, fmt.Sprintf("weight %d = %.0f%%", c.Weight, c.Percent))
	}
	if c.Type != "" {
		parts = append(parts, c.Type)
	}
	if c.Info.Subset != "" {
		parts = append(parts, "subset "+c.Info.Subset)
	}
	if len(c.Info.Selector) > 0 {
		parts = append(parts, "selects "+labels(c.Info.Selector))
	}
	if c.Info.DestinationRule != "" {
		parts = append(parts, "DestinationRule "+configName(c.Info.DestinationRule))
	}
	if c.Info.TLSMode != "" { // the TLS the cluster originates and what chose it (docs/mtls.md)
		parts = append(parts, "tls "+c.Info.TLSMode+" by "+c.Info.TLSSource)
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func describeEndpoint(ep EndpointState) string {
	s := ep.Address + " " + ep.Health
	if len(ep.Ejected) > 0 {
		s += " ejected " + strings.Join(ep.Ejected, "")
	}
	if !ep.Usable {
		s += " (not usable)"
	}
	s += " labels " + labels(ep.Labels)
	return s
}

func labels(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ",")
}
