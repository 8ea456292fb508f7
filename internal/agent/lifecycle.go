package agent

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/proxy"
)

// lifecycle runs the sidecar from "started" to "exit", Istio's agent's termination:
//
//   - ctx ends (SIGTERM): readiness fails at once; inbound listeners drain (new
//     connections still accepted until the drain period ends, as Envoy's graceful drain;
//     requests finish, Connection: close / GOAWAY); outbound keeps
//     working; exit after DrainDuration, or, with ExitOnZeroActiveConnections, as soon as
//     no inbound connection is left once MinimumDrainDuration has passed.
//   - /quitquitquit: exit at once, without drain.
//   - /drain: drain inbound now, do not exit; a later SIGTERM then exits at once (the
//     drain already happened, as Istio's preStop `pilot-agent request POST drain` does).
type lifecycle struct {
	o        Options
	log      *slog.Logger
	proxy    *proxy.Proxy
	applier  *applier
	draining *atomic.Bool
	quit     <-chan struct{}
	drainReq <-chan struct{}
}

func (l lifecycle) run(ctx context.Context) {
	// The drain's own context: connections still open when it ends are closed.
	dctx, stopDrain := context.WithCancel(context.Background())
	defer stopDrain()
	var drained <-chan struct{}
	startDrain := func() {
		if drained != nil {
			return
		}
		l.draining.Store(true) // readiness fails from now on
		l.applier.startDrain()
		drained = l.drainListeners(dctx) // router.go
	}
	exitNow := func() {
		stopDrain()
		l.closeProxy()
	}
wait:
	for {
		select {
		case <-l.quit:
			l.log.Info("handling /quitquitquit: exiting without drain")
			exitNow()
			return
		case <-l.drainReq:
			if drained == nil {
				l.log.Info("handling /drain: draining listeners; the proxy keeps running")
				startDrain()
			}
		case <-ctx.Done():
			break wait
		}
	}
	if drained != nil {
		l.log.Info("shutting down: already drained by /drain, exiting immediately")
		exitNow()
		return
	}
	l.log.Info("shutting down: draining listeners", "drain", l.o.DrainDuration.String(),
		"exit_on_zero_active_connections", l.o.ExitOnZeroActiveConnections)
	startDrain()
	began := time.Now()
	deadline := time.NewTimer(l.o.DrainDuration)
	defer deadline.Stop()
	which := "inbound" // what drains: drainListeners (router.go)
	if l.o.Router {
		which = "downstream"
	}
	if l.o.ExitOnZeroActiveConnections {
		minimum := time.NewTimer(l.o.MinimumDrainDuration)
		defer minimum.Stop()
		select {
		case <-minimum.C:
			select {
			case <-drained:
				l.log.Info("no active " + which + " connection left: exiting before the drain duration")
			default:
				l.log.Info(which+" connections still open: waiting for their requests to finish",
					"at_most", (l.o.DrainDuration - time.Since(began)).Round(time.Millisecond).String())
				select {
				case <-drained:
					l.log.Info("the last " + which + " connection finished: exiting before the drain duration")
				case <-deadline.C:
					l.log.Info("drain duration over: closing the " + which + " connections still open")
				case <-l.quit:
				}
			}
		case <-deadline.C:
		case <-l.quit:
		}
	} else {
		select {
		case <-deadline.C:
		case <-l.quit:
		}
	}
	exitNow()
}

// closeProxy closes every socket left and the connections on them, at once.
func (l lifecycle) closeProxy() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.proxy.Close(ctx); err != nil {
		l.log.Debug("proxy closed with connections still open", "error", err)
	}
}
