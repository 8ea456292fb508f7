package discovery

import (
	"os"
	"strconv"
	"time"

	"github.com/lucid-mesh/lucid/internal/controlplane/store"
)

// PushOptions are istiod's push knobs, by their environment variables' names.
type PushOptions struct {
	// DebounceAfter is the quiet period after a change before it is pushed
	// (PILOT_DEBOUNCE_AFTER, default 100ms).
	DebounceAfter time.Duration
	// DebounceMax bounds the wait for a quiet period under continuous changes
	// (PILOT_DEBOUNCE_MAX, default 10s).
	DebounceMax time.Duration
	// EDSDebounce debounces endpoint-only changes too (PILOT_ENABLE_EDS_DEBOUNCE). Istio's
	// default is true; Lucid's is false: an endpoint change is pushed at once, or
	// EDSInterval after the previous push under continuous churn, so sustained endpoint
	// churn never waits for DebounceMax.
	EDSDebounce bool
	// EDSInterval is the least time between two pushes of endpoint changes without
	// EDSDebounce (default 500ms): under continuous churn each push carries every change
	// since the one before, and a thousand sidecars are not woken a hundred times a second.
	EDSInterval time.Duration
}

// DefaultEDSInterval is PushOptions.EDSInterval's default.
const DefaultEDSInterval = 500 * time.Millisecond

// DefaultPush reads PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX and PILOT_ENABLE_EDS_DEBOUNCE
// (Go durations and a boolean, as istiod reads them), falling back to the defaults. The
// CLI's --debounce-after, --debounce-max and --eds-debounce default to these.
func DefaultPush() PushOptions {
	o := PushOptions{DebounceAfter: store.DefaultDebounce, DebounceMax: store.DefaultMaxWait, EDSInterval: DefaultEDSInterval}
	if d, err := time.ParseDuration(os.Getenv("PILOT_DEBOUNCE_AFTER")); err == nil && d > 0 {
		o.DebounceAfter = d
	}
	if d, err := time.ParseDuration(os.Getenv("PILOT_DEBOUNCE_MAX")); err == nil && d > 0 {
		o.DebounceMax = d
	}
	if b, err := strconv.ParseBool(os.Getenv("PILOT_ENABLE_EDS_DEBOUNCE")); err == nil {
		o.EDSDebounce = b
	}
	return o
}

// withDefaults fills unset fields from DefaultPush; legacy is Options.Debounce.
func (o PushOptions) withDefaults(legacy time.Duration) PushOptions {
	d := DefaultPush()
	if o.DebounceAfter <= 0 {
		o.DebounceAfter = d.DebounceAfter
		if legacy > 0 {
			o.DebounceAfter = legacy
		}
	}
	if o.DebounceMax <= 0 {
		o.DebounceMax = d.DebounceMax
	}
	o.EDSDebounce = o.EDSDebounce || d.EDSDebounce
	if o.EDSInterval <= 0 {
		o.EDSInterval = d.EDSInterval
	}
	return o
}
