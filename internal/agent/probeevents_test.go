package agent

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/agent/appprobe"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// scriptedReporter answers Report with the errors it is given, in order, then nil.
type scriptedReporter struct {
	mu     sync.Mutex
	errs   []error
	events []map[string]any
	done   chan struct{} // closed at the first nil answer
}

func (r *scriptedReporter) Report(_ context.Context, ev map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if len(r.errs) > 0 {
		err := r.errs[0]
		r.errs = r.errs[1:]
		return err
	}
	close(r.done)
	return nil
}

func (r *scriptedReporter) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func startProbeEvents(t *testing.T, rep eventReporter) (*probeEvents, *testutil.Buffer) {
	t.Helper()
	logs := &testutil.Buffer{}
	p := newProbeEvents(rep, "jetty-1", "inj", slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	p.backoffMin, p.backoffMax = 5*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, logs
}

var livezFailure = appprobe.Failure{Container: "jetty", Probe: "livez", Target: "GET http://127.0.0.1:8080/ok.jsp", Reason: "refused", Failures: 1}

// A failure seen while the control plane is unreachable (the sidecar is still starting,
// or the control plane restarts) is reported once it is back: the prober reports a
// failure only when it starts, so a dropped report would never reach the pod's events.
func TestProbeEventsRetryUntilReported(t *testing.T) {
	rep := &scriptedReporter{done: make(chan struct{}), errs: []error{
		context.DeadlineExceeded,
		status.Error(codes.Unavailable, "connection refused"),
		status.Error(codes.DeadlineExceeded, "context deadline exceeded"),
	}}
	p, logs := startProbeEvents(t, rep)
	p.hook(livezFailure)
	select {
	case <-rep.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the failure was never reported; %d attempts; log:\n%s", rep.calls(), logs)
	}
	if n := rep.calls(); n != 4 {
		t.Errorf("%d attempts, want 4 (three transient errors, then success)", n)
	}
	ev := rep.events[len(rep.events)-1]
	if ev["pod"] != "jetty-1" || ev["namespace"] != "inj" || ev["container"] != "jetty" || ev["probe"] != "livez" {
		t.Errorf("event %v", ev)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("a report that got through in the end logged a warning:\n%s", logs)
	}
}

// A report the control plane rejects is not retried, and the sidecar says why.
func TestProbeEventsRejectedNotRetried(t *testing.T) {
	rep := &scriptedReporter{done: make(chan struct{}), errs: []error{
		status.Error(codes.InvalidArgument, "pod inj/jetty-1 does not run on 127.0.0.9"),
	}}
	p, logs := startProbeEvents(t, rep)
	p.hook(livezFailure)
	logs.WaitFor(t, "probe failure not reported to the control plane", 5*time.Second)
	time.Sleep(50 * time.Millisecond) // longer than the backoff: a retry would have happened
	if n := rep.calls(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	if !strings.Contains(logs.String(), "does not run on") {
		t.Errorf("the warning does not give the control plane's reason:\n%s", logs)
	}
}

// Retrying stops after retryFor, with a warning.
func TestProbeEventsGiveUp(t *testing.T) {
	rep := &scriptedReporter{done: make(chan struct{})}
	for range 1000 { // more than can be tried in retryFor
		rep.errs = append(rep.errs, status.Error(codes.Unavailable, "connection refused"))
	}
	logs := &testutil.Buffer{}
	p := newProbeEvents(rep, "jetty-1", "inj", slog.New(slog.NewTextHandler(logs, nil)))
	p.backoffMin, p.backoffMax, p.retryFor = 5*time.Millisecond, 10*time.Millisecond, 100*time.Millisecond
	unimplemented := false
	p.deliver(context.Background(), livezFailure, &unimplemented)
	if n := rep.calls(); n < 2 || n > 12 {
		t.Errorf("%d attempts in 100ms with 5-10ms backoff, want 2 to 12", n)
	}
	if !strings.Contains(logs.String(), "probe failure not reported to the control plane") {
		t.Errorf("no warning after giving up:\n%s", logs)
	}
}
