package model

import (
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract/logformat"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// DefaultTraceSampling is Istio's random sampling percentage when
// meshConfig.defaultConfig.tracing.sampling is unset (PILOT_TRACE_SAMPLING's default).
const DefaultTraceSampling = 1.0

// Tracing is one proxy's tracing (on one side) as Istio derives it: the provider (the mesh config's
// defaultProviders.tracing, or a Telemetry resource's) with its collector service, the
// random sampling percentage and the custom tags.
type Tracing struct {
	Provider *meshv1alpha1.MeshConfig_ExtensionProvider
	Service  *Service // the collector's service in the registry
	Port     uint32   // the collector's service port
	// Sampling is the random sampling percentage (0–100).
	Sampling         float64
	MaxPathTagLength uint32
	CustomTags       map[string]*meshv1alpha1.Tracing_CustomTag
	// FormatterTags are a Telemetry resource's formatter custom tags (name → Envoy format
	// string, checked with the proxies' parser); they are replaced with CustomTags.
	FormatterTags map[string]string
	// IgnoreRequestID is a Telemetry resource's useRequestIdForTraceSampling: false.
	IgnoreRequestID bool
}

// traces is the mesh's tracing: the mesh config's default and the Telemetry resources
// that refine it, each with its provider resolved.
type traces struct {
	base       Tracing // Provider nil: no default provider
	telemetry  []*telemetryTracing
	rootNS     string
	extensions []*meshv1alpha1.MeshConfig_ExtensionProvider
}

// telemetryTracing is the tracing of one Telemetry resource.
type telemetryTracing struct {
	namespace string
	selector  map[string]string // nil: the whole namespace
	entries   []tracingEntry
}

// tracingEntry is one spec.tracing[] entry with the provider it names resolved.
type tracingEntry struct {
	spec     *telemetryv1alpha1.Tracing
	provider *Tracing // nil: names none, or one that cannot be used (then the tracing is off)
}

// TraceMode says which side of a hop a connection manager traces: a sidecar's outbound
// side and a gateway are the client, a sidecar's inbound side the server (Telemetry's
// match.mode).
type TraceMode uint8

// The trace modes.
const (
	TraceClient TraceMode = iota
	TraceServer
)

// TracingFor returns proxy p's tracing on its mode side as istiod computes it: the mesh
// config's default provider and sampling, then the tracing entries of the Telemetry
// resources in the root namespace, p's namespace and those selecting p, in that order,
// each setting what it sets (providers, randomSamplingPercentage, customTags replacing
// the ones before, disableSpanReporting). nil: p makes no spans on that side.
func (m *Mesh) TracingFor(p *Proxy, mode TraceMode) *Tracing {
	ts := m.tracing
	if ts == nil {
		return nil
	}
	out := ts.base
	disabled := false
	apply := func(e tracingEntry) {
		s := e.spec
		if !mode.matches(s.GetMatch().GetMode()) {
			return
		}
		if len(s.GetProviders()) > 0 {
			out.Provider, out.Service, out.Port = nil, nil, 0
			if e.provider != nil {
				out.Provider, out.Service, out.Port = e.provider.Provider, e.provider.Service, e.provider.Port
			}
		}
		if d := s.GetDisableSpanReporting(); d != nil {
			disabled = d.GetValue()
		}
		if r := s.GetRandomSamplingPercentage(); r != nil {
			out.Sampling = r.GetValue()
		}
		if u := s.GetUseRequestIdForTraceSampling(); u != nil {
			out.IgnoreRequestID = !u.GetValue()
		}
		if s.GetCustomTags() != nil {
			out.CustomTags, out.FormatterTags = map[string]*meshv1alpha1.Tracing_CustomTag{}, map[string]string{}
			for name, ct := range s.GetCustomTags() {
				if c := meshTag(ct); c != nil {
					out.CustomTags[name] = c
				} else if v := ct.GetFormatter().GetValue(); v != "" {
					if _, err := logformat.Parse(v); err == nil { // else warned by config
						out.FormatterTags[name] = v
					}
				}
			}
		}
	}
	for _, tt := range telemetryLevels(ts.telemetry, ts.rootNS, p, func(t *telemetryTracing) (string, map[string]string) { return t.namespace, t.selector }) {
		for _, e := range tt.entries {
			apply(e)
		}
	}
	if out.Provider == nil || disabled {
		return nil
	}
	return &out
}

// meshTag converts a Telemetry custom tag to the mesh config's form.
func meshTag(ct *telemetryv1alpha1.Tracing_CustomTag) *meshv1alpha1.Tracing_CustomTag {
	switch {
	case ct.GetLiteral() != nil:
		return &meshv1alpha1.Tracing_CustomTag{Type: &meshv1alpha1.Tracing_CustomTag_Literal{Literal: &meshv1alpha1.Tracing_Literal{Value: ct.GetLiteral().GetValue()}}}
	case ct.GetHeader() != nil:
		return &meshv1alpha1.Tracing_CustomTag{Type: &meshv1alpha1.Tracing_CustomTag_Header{Header: &meshv1alpha1.Tracing_RequestHeader{
			Name: ct.GetHeader().GetName(), DefaultValue: ct.GetHeader().GetDefaultValue()}}}
	case ct.GetEnvironment() != nil:
		return &meshv1alpha1.Tracing_CustomTag{Type: &meshv1alpha1.Tracing_CustomTag_Environment{Environment: &meshv1alpha1.Tracing_Environment{
			Name: ct.GetEnvironment().GetName(), DefaultValue: ct.GetEnvironment().GetDefaultValue()}}}
	}
	return nil
}

// checkTracing resolves the mesh config's tracing provider and the Telemetry resources'
// against the registry (built by now); a provider that cannot be used is a warning
// naming the field, as istiod logs it. Telemetry selectors split proxy classes.
func (b *builder) checkTracing(objs []*config.Object, mesh *meshv1alpha1.MeshConfig) {
	if !mesh.GetEnableTracing() {
		return
	}
	ts := &traces{rootNS: b.m.rootNamespace, extensions: mesh.GetExtensionProviders()}
	t := mesh.GetDefaultConfig().GetTracing()
	ts.base = Tracing{Sampling: t.GetSampling(), MaxPathTagLength: t.GetMaxPathTagLength(), CustomTags: t.GetCustomTags()}
	if ts.base.Sampling == 0 || ts.base.Sampling > 100 {
		ts.base.Sampling = DefaultTraceSampling // Istio: unset, or over 100, is the default
	}
	if names := mesh.GetDefaultProviders().GetTracing(); len(names) > 0 {
		// Istio uses the first provider only.
		if p, msg, field := b.resolveProvider(ts.extensions, names[0], "defaultProviders.tracing[0]"); p != nil {
			ts.base.Provider, ts.base.Service, ts.base.Port = p.Provider, p.Service, p.Port
		} else {
			b.diags = append(b.diags, config.Diagnostic{Level: config.Warning, Kind: "MeshConfig", Field: field, Message: msg + "; no spans are made"})
		}
	}
	for _, o := range objs {
		spec, ok := o.Spec.(*telemetryv1alpha1.Telemetry)
		if !ok || len(spec.GetTracing()) == 0 || spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
			continue // targetRefs are not applied yet (config warned): never widened to the namespace
		}
		tt := &telemetryTracing{namespace: o.Namespace}
		if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 {
			tt.selector = sel
			b.addSelector(sel)
		}
		for i, tr := range spec.GetTracing() {
			e := tracingEntry{spec: tr}
			if prs := tr.GetProviders(); len(prs) > 0 {
				p, msg, field := b.resolveProvider(ts.extensions, prs[0].GetName(), "")
				if p == nil {
					if field != "" {
						msg = "meshConfig." + field + ": " + msg
					}
					b.warn(o, fmt.Sprintf("spec.tracing[%d].providers[0].name", i), "%s; the proxies it selects make no spans", msg)
				}
				e.provider = p
			}
			tt.entries = append(tt.entries, e)
		}
		ts.telemetry = append(ts.telemetry, tt)
	}
	b.m.tracing = ts
}

// resolveProvider finds the tracing extension provider name and its collector service;
// on failure it says why and which mesh config field is wrong.
func (b *builder) resolveProvider(exts []*meshv1alpha1.MeshConfig_ExtensionProvider, name, nameField string) (*Tracing, string, string) {
	i := slices.IndexFunc(exts, func(p *meshv1alpha1.MeshConfig_ExtensionProvider) bool { return p.GetName() == name })
	if i < 0 {
		return nil, fmt.Sprintf("provider %q is not defined in extensionProviders", name), nameField
	}
	p := exts[i]
	var host string
	var port uint32
	switch {
	case p.GetOpentelemetry() != nil:
		host, port = p.GetOpentelemetry().GetService(), p.GetOpentelemetry().GetPort()
	case p.GetZipkin() != nil:
		host, port = p.GetZipkin().GetService(), p.GetZipkin().GetPort()
	default:
		return nil, fmt.Sprintf("provider %q is not a tracing provider Lucid runs (opentelemetry and zipkin are)", name), fmt.Sprintf("extensionProviders[%d]", i)
	}
	// Istio accepts "namespace/host" as well as "host".
	if _, h, ok := strings.Cut(host, "/"); ok {
		host = h
	}
	svc := b.m.Service(host)
	if svc == nil {
		return nil, fmt.Sprintf("service %q of tracing provider %q is not in the registry", host, name), fmt.Sprintf("extensionProviders[%d].service", i)
	}
	if _, ok := svc.Port(port); !ok {
		return nil, fmt.Sprintf("service %q of tracing provider %q has no port %d", host, name, port), fmt.Sprintf("extensionProviders[%d].port", i)
	}
	return &Tracing{Provider: p, Service: svc, Port: port}, "", ""
}
