package agent

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/agent/appprobe"
	"github.com/lucid-mesh/lucid/internal/contract"
)

// eventReporter sends an event to the control plane (xdsclient.Client.Report).
type eventReporter interface {
	Report(ctx context.Context, event map[string]any) error
}

// probeEvents forwards app probe failures to the control plane, which records them as
// Events on the pod (`kubectl describe pod`). The hook never blocks the probe: when eight
// failures are already waiting, more are dropped (they stay in the log and the metric).
type probeEvents struct {
	ch      chan appprobe.Failure
	rep     eventReporter
	pod, ns string
	log     *slog.Logger
	timeout time.Duration
}

func newProbeEvents(rep eventReporter, pod, namespace string, log *slog.Logger) *probeEvents {
	return &probeEvents{ch: make(chan appprobe.Failure, 8), rep: rep, pod: pod, ns: namespace, log: log, timeout: 5 * time.Second}
}

// hook is appprobe.Options.OnFailure.
func (p *probeEvents) hook(f appprobe.Failure) {
	select {
	case p.ch <- f:
	default:
		p.log.Debug("probe failure not reported to the control plane: queue full", "container", f.Container, "probe", f.Probe)
	}
}

// run reports queued failures until ctx ends.
func (p *probeEvents) run(ctx context.Context) {
	unimplemented := false
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-p.ch:
			rctx, cancel := context.WithTimeout(ctx, p.timeout)
			err := p.rep.Report(rctx, contract.ProbeFailure{
				Pod: p.pod, Namespace: p.ns, Container: f.Container, Probe: f.Probe,
				Target: f.Target, Reason: f.Reason, Cause: f.Cause, Failures: f.Failures,
			}.Fields())
			cancel()
			switch {
			case err == nil || ctx.Err() != nil:
			case status.Code(err) == codes.Unimplemented:
				if !unimplemented {
					p.log.Debug("the control plane does not record probe events (not in Kubernetes mode)")
				}
				unimplemented = true
			default:
				p.log.Warn("probe failure not reported to the control plane", "container", f.Container, "probe", f.Probe, "error", err)
			}
		}
	}
}
