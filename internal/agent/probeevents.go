package agent

import (
	"context"
	"errors"
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
// A report the control plane could not take (not yet connected, restarting) is retried
// with backoff for up to retryFor: the prober reports a failure once, when it starts, so
// a lost report would leave the pod without its event.
type probeEvents struct {
	ch      chan appprobe.Failure
	rep     eventReporter
	pod, ns string
	log     *slog.Logger
	timeout time.Duration // per attempt

	retryFor               time.Duration // how long one failure is retried
	backoffMin, backoffMax time.Duration
}

func newProbeEvents(rep eventReporter, pod, namespace string, log *slog.Logger) *probeEvents {
	return &probeEvents{
		ch: make(chan appprobe.Failure, 8), rep: rep, pod: pod, ns: namespace, log: log,
		timeout: 5 * time.Second, retryFor: 2 * time.Minute,
		backoffMin: 500 * time.Millisecond, backoffMax: 10 * time.Second,
	}
}

// hook is appprobe.Options.OnFailure.
func (p *probeEvents) hook(f appprobe.Failure) {
	select {
	case p.ch <- f:
	default:
		p.log.Debug("probe failure not reported to the control plane: queue full", "container", f.Container, "probe", f.Probe)
	}
}

// run reports queued failures, one at a time and in order, until ctx ends.
func (p *probeEvents) run(ctx context.Context) {
	unimplemented := false
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-p.ch:
			p.deliver(ctx, f, &unimplemented)
		}
	}
}

// deliver reports one failure, retrying while the control plane is unreachable.
func (p *probeEvents) deliver(ctx context.Context, f appprobe.Failure, unimplemented *bool) {
	event := contract.ProbeFailure{
		Pod: p.pod, Namespace: p.ns, Container: f.Container, Probe: f.Probe,
		Target: f.Target, Reason: f.Reason, Cause: f.Cause, Failures: f.Failures,
	}.Fields()
	deadline := time.Now().Add(p.retryFor)
	wait := p.backoffMin
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := p.rep.Report(rctx, event)
		cancel()
		switch {
		case err == nil || ctx.Err() != nil:
			return
		case status.Code(err) == codes.Unimplemented:
			if !*unimplemented {
				p.log.Debug("the control plane does not record probe events (not in Kubernetes mode)")
			}
			*unimplemented = true
			return
		case !transient(err) || time.Now().Add(wait).After(deadline):
			p.log.Warn("probe failure not reported to the control plane", "container", f.Container, "probe", f.Probe, "attempts", attempt, "error", err)
			return
		}
		p.log.Debug("probe failure report will be retried", "container", f.Container, "probe", f.Probe, "in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, p.backoffMax)
	}
}

// transient reports whether a Report error may go away by itself: the connection is not
// up yet or the control plane is restarting. A rejected report (InvalidArgument,
// PermissionDenied) would be rejected again.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}
