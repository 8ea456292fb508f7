// Package podevent brings what a sidecar sees into `kubectl describe pod`: the agent
// reports an app probe failure over its xDS connection (lucid.v1.Events/Report, a
// hand-written gRPC service served beside ADS), and the control plane records it as a
// Warning Event on the pod, aggregated and rate limited like the kubelet's own events:
//
//	appprobe (failure transition) ─► agent ─► xdsclient.Report ══ gRPC ══▶ Service ─► Recorder ─► Event
//
// It is control-plane code: it shares only the wire format (a google.protobuf.Struct) with
// the data plane.
package podevent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/lucid-mesh/lucid/internal/contract"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Method names the service on the wire (the sidecar's xdsclient calls the same contract).
const (
	ServiceName = contract.EventsService
	Method      = contract.EventsReportMethod
)

// Report is one probe failure a sidecar saw.
type Report struct {
	Pod, Namespace string
	Container      string
	Probe          string // livez, readyz, startupz, prestopz, poststartz
	Target         string
	Reason         string
	Cause          string
	Failures       int
	// Peer is the sidecar's address as the gRPC server saw it (checked against the pod's
	// IPs when the pod has any).
	Peer netip.Addr
}

// reporter is what the service hands reports to.
type reporter interface {
	Enqueue(Report) error
}

// ServiceDesc describes the service for grpc.Server.RegisterService (or
// ads.Server.RegisterService) with a *Recorder as the implementation.
var ServiceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*reporter)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Report", Handler: reportHandler}},
	Streams:     []grpc.StreamDesc{},
	Metadata:    "lucid/events.proto (hand-written: Struct in, Empty out)",
}

//nolint:revive // context-as-argument: grpc.MethodHandler's signature puts srv first.
func reportHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(structpb.Struct)
	if err := dec(in); err != nil {
		return nil, err
	}
	handle := func(ctx context.Context, req any) (any, error) {
		return receive(ctx, srv.(reporter), req.(*structpb.Struct))
	}
	if interceptor == nil {
		return handle(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: Method}, handle)
}

func receive(ctx context.Context, r reporter, in *structpb.Struct) (*emptypb.Empty, error) {
	rep, err := ParseReport(in.AsMap())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			rep.Peer = ap.Addr().Unmap()
		}
	}
	if err := r.Enqueue(rep); err != nil {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	return &emptypb.Empty{}, nil
}

// ParseReport reads a report's fields. The pod and namespace come from "pod" and
// "namespace", else from the sidecar's node id ("node": sidecar~<ip>~<pod>.<ns>~...).
func ParseReport(m map[string]any) (Report, error) {
	f, err := contract.ParseProbeFailure(m)
	if err != nil {
		return Report{}, err
	}
	r := Report{Pod: f.Pod, Namespace: f.Namespace, Container: f.Container, Probe: f.Probe,
		Target: f.Target, Reason: f.Reason, Cause: f.Cause, Failures: f.Failures}
	if r.Pod == "" || r.Namespace == "" {
		pod, ns, err := podFromNode(f.Node)
		if err != nil {
			return Report{}, err
		}
		r.Pod, r.Namespace = pod, ns
	}
	if probeNames[r.Probe].reason == "" {
		return Report{}, fmt.Errorf("report: probe %q is not livez, readyz, startupz, prestopz or poststartz", r.Probe)
	}
	return r, nil
}

// podFromNode reads pod and namespace from a sidecar node id.
func podFromNode(node string) (string, string, error) {
	parts := strings.Split(node, "~")
	if len(parts) != 4 || parts[0] != "sidecar" {
		return "", "", fmt.Errorf("report: node %q is not a sidecar node id (sidecar~<ip>~<pod>.<namespace>~<domain>)", node)
	}
	pod, ns, ok := strings.Cut(parts[2], ".")
	if !ok || pod == "" || ns == "" {
		return "", "", fmt.Errorf("report: node %q: %q is not <pod>.<namespace>", node, parts[2])
	}
	return pod, ns, nil
}

// probeNames maps a status path's last segment to the kubelet's words.
var probeNames = map[string]struct{ reason, what string }{
	"livez":      {"Unhealthy", "Liveness probe"},
	"readyz":     {"Unhealthy", "Readiness probe"},
	"startupz":   {"Unhealthy", "Startup probe"},
	"prestopz":   {"FailedPreStopHook", "PreStop hook"},
	"poststartz": {"FailedPostStartHook", "PostStart hook"},
}

// Message is the Event's text: the kubelet's "<Kind> probe failed: " followed by Lucid's
// explanation.
func (r Report) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed: %s", probeNames[r.Probe].what, r.Cause)
	fmt.Fprintf(&b, " (Lucid sidecar, probing %s for container %s on the kubelet's behalf", r.Target, r.Container)
	if r.Reason != "" {
		fmt.Fprintf(&b, "; reason %s", r.Reason)
	}
	b.WriteString(")")
	return b.String()
}
