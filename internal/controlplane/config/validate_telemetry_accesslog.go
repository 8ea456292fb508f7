package config

import (
	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
)

// validateAccessLogging checks one spec.accessLogging entry: its providers named, and
// its filter.expression valid CEL (istiod parses it) that also type-checks against
// Envoy's attributes and yields a boolean, so a mistake istiod would only meet as a
// rejected listener is named here.
func validateAccessLogging(v *validator, path string, l *telemetryv1alpha1.AccessLogging) {
	telemetryProviders(v, path, l.GetProviders())
	if f := l.GetFilter(); f != nil {
		if _, err := celattr.CompileFilter(f.GetExpression()); err != nil {
			v.errorf(path+".filter.expression", "must be a valid CEL expression, %v", err)
		}
	}
}
