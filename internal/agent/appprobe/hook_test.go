package appprobe

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestOnFailureHook: the hook sees each failure transition once (first failure, change of
// cause), never a repeated failure or a success.
func TestOnFailureHook(t *testing.T) {
	var mu sync.Mutex
	var got []Failure
	port := closedPort(t)
	set, err := New(Options{Config: Config{"/app-health/jetty/readyz": {TCPSocket: &TCPSocketAction{Port: IntOrString{Int: port}}, TimeoutSeconds: 2}},
		Target: appIP, StatusPort: 15020, SourceV4: srcIP, Logger: slog.New(slog.DiscardHandler),
		OnFailure: func(f Failure) { mu.Lock(); got = append(got, f); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{set: set}
	for range 3 {
		_ = h.probe("/app-health/jetty/readyz", nil).Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("hook called %d times, want once: %+v", len(got), got)
	}
	f := got[0]
	if f.Container != "jetty" || f.Probe != "readyz" || f.Failures != 1 || !strings.Contains(f.Target, appIP) || !strings.Contains(f.Cause, "refused") {
		t.Fatalf("failure %+v", f)
	}
}
