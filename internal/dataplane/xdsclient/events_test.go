package xdsclient

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// eventSink is a gRPC server that serves only the control plane's event service (Struct
// in, Empty out) and hands each report to the test.
func eventSink(t *testing.T) (addr string, got <-chan map[string]any) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan map[string]any, 4)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
		if m, _ := grpc.MethodFromServerStream(st); m != EventsReportMethod {
			return status.Errorf(codes.Unimplemented, "%s: not served here", m) // the ADS stream
		}
		in := new(structpb.Struct)
		if err := st.RecvMsg(in); err != nil {
			return err
		}
		ch <- in.AsMap()
		return st.SendMsg(&emptypb.Empty{})
	}))
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String(), ch
}

// A report made before Run starts (an app probe fails while the sidecar is starting)
// waits for the connection and arrives; it is not dropped as "not running".
func TestReportBeforeRunWaits(t *testing.T) {
	addr, got := eventSink(t)
	c := New(Options{Server: addr, NodeID: testNode})

	reported := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		reported <- c.Report(ctx, map[string]any{"kind": "probe-failure", "pod": "jetty-1"})
	}()
	time.Sleep(50 * time.Millisecond) // the report is waiting before Run starts
	select {
	case err := <-reported:
		t.Fatalf("Report returned before Run started: %v", err)
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	if err := <-reported; err != nil {
		t.Fatalf("Report: %v", err)
	}
	select {
	case m := <-got:
		if m["pod"] != "jetty-1" || m["node"] != testNode {
			t.Errorf("event %v: want pod jetty-1 and node %s", m, testNode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the control plane never received the event")
	}
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	// After Run returned, reports fail at once.
	if err := c.Report(context.Background(), map[string]any{"pod": "x"}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Report after Run: %v, want ErrNotConnected", err)
	}
}

// A report whose deadline passes before Run starts says so.
func TestReportBeforeRunDeadline(t *testing.T) {
	c := New(Options{Server: "127.0.0.1:1", NodeID: testNode})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := c.Report(ctx, map[string]any{"pod": "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Report: %v, want a deadline error", err)
	}
}
