package xdsclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/lucid-mesh/lucid/internal/contract"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// EventsReportMethod is the control plane's event service: one method taking a
// google.protobuf.Struct and returning google.protobuf.Empty, served beside ADS.
const EventsReportMethod = contract.EventsReportMethod

// ErrNotConnected is Report's error after Run has returned.
var ErrNotConnected = errors.New("xdsclient: not running")

// Report sends one event (e.g. an app probe failure) to the control plane over the xDS
// connection; the node id is added as "node". It waits for the connection while ctx
// allows (it is not fail-fast), including for Run to start, so callers bound it with a
// deadline.
func (c *Client) Report(ctx context.Context, event map[string]any) error {
	select {
	case <-c.running:
	case <-ctx.Done():
		return fmt.Errorf("xdsclient: report to %s: %w before the client started", c.o.Server, ctx.Err())
	}
	conn := c.conn.Load()
	if conn == nil {
		return ErrNotConnected
	}
	fields := make(map[string]any, len(event)+1)
	for k, v := range event {
		fields[k] = v
	}
	fields["node"] = c.o.NodeID
	msg, err := structpb.NewStruct(fields)
	if err != nil {
		return fmt.Errorf("xdsclient: report: %w", err)
	}
	if err := conn.Invoke(ctx, EventsReportMethod, msg, &emptypb.Empty{}, grpc.WaitForReady(true)); err != nil {
		return fmt.Errorf("xdsclient: report to %s: %w", c.o.Server, err)
	}
	return nil
}
