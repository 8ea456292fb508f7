package model

import (
	"cmp"
	"fmt"
	"slices"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// EnvoyAccessLogProvider is the access-log provider every Istio mesh has without
// declaring it: Envoy's file access log to standard output.
const EnvoyAccessLogProvider = "envoy"

// AccessLog is one access log a proxy writes on one side, from the Telemetry API: the
// provider's file and format (telemetry_logformat.go) and the CEL filter ("" logs every
// request).
type AccessLog struct {
	Provider string
	Path     string
	Filter   string
	Format   *LogFormat // nil: the proxy's encoding
}

// fileProvider is an envoyFileAccessLog provider.
type fileProvider struct {
	path   string
	format *LogFormat
}

// accessLogging is the Telemetry resources' accessLogging and the mesh config's default
// providers.
type accessLogging struct {
	telemetry []*telemetryLogging
	defaults  []string // meshConfig.defaultProviders.accessLogging
	providers map[string]fileProvider
	rootNS    string
}

// telemetryLogging is the accessLogging of one Telemetry resource.
type telemetryLogging struct {
	namespace string
	selector  map[string]string // nil: the whole namespace
	entries   []*telemetryv1alpha1.AccessLogging
}

// AccessLogsFor returns proxy p's access logs on its mode side (a sidecar's outbound side
// and a gateway are the client, its inbound side the server) as istiod merges them: the
// Telemetry resources in the root namespace, p's namespace and those selecting p, in that
// order (the oldest of each level). An entry names its providers (else the ones before
// it: the mesh config's defaultProviders.accessLogging, else "envoy"), turns them off or
// on (disabled) and sets their filter. ok is false when no Telemetry configures access
// logging for p: the proxy's own access log (meshConfig.accessLogFile, the proxy's
// --access-log) applies. ok with no logs: logging is off.
func (m *Mesh) AccessLogsFor(p *Proxy, mode TraceMode) (logs []AccessLog, ok bool) {
	al := m.accessLogs
	if al == nil {
		return nil, false
	}
	providers := al.defaults
	if len(providers) == 0 {
		providers = []string{EnvoyAccessLogProvider}
	}
	type state struct {
		off    bool
		filter string
	}
	states := map[string]*state{}
	for _, tl := range telemetryLevels(al.telemetry, al.rootNS, p, func(t *telemetryLogging) (string, map[string]string) { return t.namespace, t.selector }) {
		for _, e := range tl.entries {
			if !mode.matches(e.GetMatch().GetMode()) {
				continue
			}
			ok = true
			if prs := e.GetProviders(); len(prs) > 0 {
				providers = providers[:0:0]
				for _, pr := range prs {
					providers = append(providers, pr.GetName())
				}
			}
			for _, name := range providers {
				s := states[name]
				if s == nil {
					s = &state{}
					states[name] = s
				}
				if d := e.GetDisabled(); d != nil {
					s.off = d.GetValue()
				}
				if f := e.GetFilter(); f != nil {
					s.filter = f.GetExpression()
				}
			}
		}
	}
	for _, name := range providers {
		fp, known := al.providers[name]
		if s := states[name]; known && !s.off {
			logs = append(logs, AccessLog{Provider: name, Path: fp.path, Filter: s.filter, Format: fp.format})
		}
	}
	return logs, ok
}

// matches reports whether a Telemetry entry's match.mode covers side m
// (CLIENT_AND_SERVER, the default, covers both).
func (m TraceMode) matches(w telemetryv1alpha1.WorkloadMode) bool {
	switch w {
	case telemetryv1alpha1.WorkloadMode_CLIENT:
		return m == TraceClient
	case telemetryv1alpha1.WorkloadMode_SERVER:
		return m == TraceServer
	}
	return true
}

// telemetryLevels are the Telemetry resources that apply to p, in Istio's order of
// precedence: the root namespace's (unless p is in it), p's namespace's, then the one
// selecting p; at each level the first (oldest) resource.
func telemetryLevels[T any](ts []T, rootNS string, p *Proxy, scope func(T) (string, map[string]string)) []T {
	var out []T
	for _, level := range []func(ns string, sel map[string]string) bool{
		func(ns string, sel map[string]string) bool {
			return ns == rootNS && sel == nil && p.Namespace != rootNS
		},
		func(ns string, sel map[string]string) bool { return ns == p.Namespace && sel == nil },
		func(ns string, sel map[string]string) bool {
			return ns == p.Namespace && sel != nil && selects(sel, p.Labels)
		},
	} {
		for _, t := range ts {
			if level(scope(t)) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// checkAccessLogging collects the Telemetry resources' accessLogging and resolves the
// providers they name against the mesh config's extensionProviders: a provider that is
// not defined, or not an Envoy file access log, is a warning naming the field (lucid
// analyze shows it) and writes nothing. Telemetry selectors split proxy classes.
func (b *builder) checkAccessLogging(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) {
	al := &accessLogging{rootNS: b.m.rootNamespace, defaults: mesh.GetDefaultProviders().GetAccessLogging(),
		providers: map[string]fileProvider{EnvoyAccessLogProvider: {path: "/dev/stdout"}}}
	exts := mesh.GetExtensionProviders()
	for i, p := range exts {
		if f := p.GetEnvoyFileAccessLog(); f != nil {
			format, field, problem := providerLogFormat(f) // telemetry_logformat.go
			if problem != "" {
				b.diags = append(b.diags, config.Diagnostic{Level: config.Warning, Kind: "MeshConfig",
					Field: fmt.Sprintf("extensionProviders[%d].%s", i, field), Message: problem + "; the proxy's own encoding is used"})
			}
			al.providers[p.GetName()] = fileProvider{path: cmp.Or(f.GetPath(), "/dev/stdout"), format: format}
		} else if p.GetName() == EnvoyAccessLogProvider {
			delete(al.providers, EnvoyAccessLogProvider) // redefined as something else
		}
	}
	check := func(name string, warn func(msg string)) {
		if _, ok := al.providers[name]; ok {
			return
		}
		if i := slices.IndexFunc(exts, func(p *meshv1alpha1.MeshConfig_ExtensionProvider) bool { return p.GetName() == name }); i >= 0 {
			warn(fmt.Sprintf("provider %q (meshConfig.extensionProviders[%d]) is not an access-log provider Lucid runs (envoyFileAccessLog is); it writes nothing", name, i))
			return
		}
		warn(fmt.Sprintf("provider %q is not defined in extensionProviders; it writes nothing", name))
	}
	for i, name := range al.defaults {
		check(name, func(msg string) {
			b.diags = append(b.diags, config.Diagnostic{Level: config.Warning, Kind: "MeshConfig", Field: fmt.Sprintf("defaultProviders.accessLogging[%d]", i), Message: msg})
		})
	}
	for _, o := range objs {
		spec, ok := o.Spec.(*telemetryv1alpha1.Telemetry)
		if !ok || len(spec.GetAccessLogging()) == 0 || spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
			continue // targetRefs are not applied yet (config warned): never widened to the namespace
		}
		tl := &telemetryLogging{namespace: o.Namespace, entries: spec.GetAccessLogging()}
		if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
			tl.selector = sel
			b.addSelector(sel)
		}
		for i, e := range spec.GetAccessLogging() {
			for j, pr := range e.GetProviders() {
				check(pr.GetName(), func(msg string) { b.warn(o, fmt.Sprintf("spec.accessLogging[%d].providers[%d].name", i, j), "%s", msg) })
			}
		}
		al.telemetry = append(al.telemetry, tl)
	}
	if len(al.telemetry) > 0 {
		b.m.accessLogs = al
	}
}
