package contract

import (
	"errors"
	"fmt"
)

// The event service a sidecar's agent calls over its xDS connection: one method taking a
// google.protobuf.Struct (the fields below) and returning google.protobuf.Empty.
const (
	EventsService      = "lucid.v1.Events"
	EventsReportMethod = "/" + EventsService + "/Report"
)

// ProbeFailureKind is the "kind" field of a probe-failure report.
const ProbeFailureKind = "probe_failure"

// ProbeFailure is an app probe failure an agent reports so that the control plane can
// record it as an Event on the pod.
type ProbeFailure struct {
	Pod, Namespace string // empty: taken from the reporting node's id
	Container      string
	Probe          string // livez, readyz, startupz, prestopz, poststartz
	Target         string
	Reason         string
	Cause          string
	Failures       int
	Node           string // the reporting proxy's node id (set by the xDS client)
}

// Fields is the report as the Struct's fields (the xDS client adds "node").
func (p ProbeFailure) Fields() map[string]any {
	return map[string]any{
		"kind": ProbeFailureKind, "pod": p.Pod, "namespace": p.Namespace,
		"container": p.Container, "probe": p.Probe, "target": p.Target,
		"reason": p.Reason, "cause": p.Cause, "failures": p.Failures,
	}
}

// ParseProbeFailure reads a report's fields; it checks only that the fields every report
// needs are present.
func ParseProbeFailure(m map[string]any) (ProbeFailure, error) {
	str := func(k string) string { s, _ := m[k].(string); return s }
	p := ProbeFailure{Pod: str("pod"), Namespace: str("namespace"), Container: str("container"),
		Probe: str("probe"), Target: str("target"), Reason: str("reason"), Cause: str("cause"), Node: str("node")}
	switch f := m["failures"].(type) {
	case float64:
		if f > 0 {
			p.Failures = int(f)
		}
	case int:
		p.Failures = f
	}
	if k := str("kind"); k != "" && k != ProbeFailureKind {
		return ProbeFailure{}, fmt.Errorf("report: kind %q is not %s", k, ProbeFailureKind)
	}
	switch {
	case p.Container == "":
		return ProbeFailure{}, errors.New("report: no container")
	case p.Cause == "":
		return ProbeFailure{}, errors.New("report: no cause")
	}
	return p, nil
}
