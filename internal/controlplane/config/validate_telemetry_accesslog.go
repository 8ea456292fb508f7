package config

import (
	"errors"

	telemetryv1alpha1 "istio.io/api/telemetry/v1alpha1"

	"github.com/lucid-mesh/lucid/internal/contract/celattr"
)

// validateAccessLogging checks one spec.accessLogging entry: its providers named, and
// its filter.expression valid CEL (istiod parses it) that also type-checks against
// Envoy's attributes and yields a boolean and whose worst-case cost is bounded, so a
// mistake istiod would only meet as a rejected listener is named here.
func validateAccessLogging(v *validator, path string, l *telemetryv1alpha1.AccessLogging) {
	telemetryProviders(v, path, l.GetProviders())
	if f := l.GetFilter(); f != nil {
		if _, err := celattr.CompileFilter(f.GetExpression()); err != nil {
			celError(v, path+".filter.expression", err)
		}
	}
}

// celError reports an expression that does not compile, or one that may cost too much
// per request (celattr.MaxCost), at field.
func celError(v *validator, field string, err error) {
	if errors.Is(err, celattr.ErrTooCostly) {
		v.errorf(field, "%v; every request evaluates it", err)
		return
	}
	v.errorf(field, "must be a valid CEL expression, %v", err)
}
