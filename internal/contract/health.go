package contract

// Envoy's host health flag strings, as /clusters prints them and istioctl reads them.
const (
	FailedActiveHC             = "/failed_active_hc"
	FailedOutlierCheck         = "/failed_outlier_check"
	FailedEDSHealth            = "/failed_eds_health"
	DegradedEDSHealth          = "/degraded_eds_health"
	EDSStatusDraining          = "/eds_status_draining"
	PendingDynamicRemoval      = "/pending_dynamic_removal"
	PendingActiveHC            = "/pending_active_hc"
	ExcludedViaImmediateHCFail = "/excluded_via_immediate_hc_fail"
	ActiveHCTimeout            = "/active_hc_timeout"
	DegradedActiveHC           = "/degraded_active_hc"
)
