package model

import (
	"fmt"
	"slices"
	"strings"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// DefaultTraceSampling is Istio's random sampling percentage when
// meshConfig.defaultConfig.tracing.sampling is unset (PILOT_TRACE_SAMPLING's default).
const DefaultTraceSampling = 1.0

// Tracing is the mesh's tracing as Istio derives it from the mesh config: the provider
// meshConfig.defaultProviders.tracing names among extensionProviders, its collector
// service, and meshConfig.defaultConfig.tracing's sampling, path tag length and custom tags.
type Tracing struct {
	Provider *meshv1alpha1.MeshConfig_ExtensionProvider
	Service  *Service // the collector's service in the registry
	Port     uint32   // the collector's service port
	// Sampling is the random sampling percentage (0–100).
	Sampling         float64
	MaxPathTagLength uint32
	CustomTags       map[string]*meshv1alpha1.Tracing_CustomTag
}

// Tracing returns the mesh's tracing; nil when no tracing provider is configured (or the
// one named cannot be used: Build warned why).
func (m *Mesh) Tracing() *Tracing { return m.tracing }

// checkTracing resolves the mesh config's tracing provider against the registry (built
// by now); a provider that cannot be used is a warning naming the field, as istiod logs it.
func (b *builder) checkTracing(mesh *meshv1alpha1.MeshConfig) {
	names := mesh.GetDefaultProviders().GetTracing()
	if len(names) == 0 || !mesh.GetEnableTracing() {
		return
	}
	warn := func(field, format string, args ...any) {
		b.diags = append(b.diags, config.Diagnostic{Level: config.Warning, Kind: "MeshConfig", Field: field,
			Message: fmt.Sprintf(format, args...) + "; no spans are made"})
	}
	// Istio uses the first provider only.
	name := names[0]
	i := slices.IndexFunc(mesh.GetExtensionProviders(), func(p *meshv1alpha1.MeshConfig_ExtensionProvider) bool { return p.GetName() == name })
	if i < 0 {
		warn("defaultProviders.tracing[0]", "provider %q is not defined in extensionProviders", name)
		return
	}
	p := mesh.GetExtensionProviders()[i]
	var host string
	var port uint32
	switch {
	case p.GetOpentelemetry() != nil:
		host, port = p.GetOpentelemetry().GetService(), p.GetOpentelemetry().GetPort()
	case p.GetZipkin() != nil:
		host, port = p.GetZipkin().GetService(), p.GetZipkin().GetPort()
	default:
		warn(fmt.Sprintf("extensionProviders[%d]", i), "provider %q is not a tracing provider Lucid runs (opentelemetry and zipkin are)", name)
		return
	}
	// Istio accepts "namespace/host" as well as "host".
	if _, h, ok := strings.Cut(host, "/"); ok {
		host = h
	}
	svc := b.m.Service(host)
	if svc == nil {
		warn(fmt.Sprintf("extensionProviders[%d].service", i), "service %q of tracing provider %q is not in the registry", host, name)
		return
	}
	if _, ok := svc.Port(port); !ok {
		warn(fmt.Sprintf("extensionProviders[%d].port", i), "service %q of tracing provider %q has no port %d", host, name, port)
		return
	}
	t := mesh.GetDefaultConfig().GetTracing()
	sampling := t.GetSampling()
	if sampling == 0 || sampling > 100 {
		sampling = DefaultTraceSampling // Istio: unset, or over 100, is the default
	}
	b.m.tracing = &Tracing{Provider: p, Service: svc, Port: port, Sampling: sampling,
		MaxPathTagLength: t.GetMaxPathTagLength(), CustomTags: t.GetCustomTags()}
}
