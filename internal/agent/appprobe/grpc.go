package appprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func grpcService(e *entry) string {
	if e.p.GRPC.Service != nil {
		return *e.p.GRPC.Service
	}
	return ""
}

func grpcTarget(e *entry) string {
	return fmt.Sprintf("grpc.health.v1.Health/Check %s service %q", e.target, grpcService(e))
}

// probeGRPC calls grpc.health.v1.Health/Check on a new plaintext connection, as the
// kubelet's gRPC probe does; only SERVING is success. The kubelet's User-Agent is passed on.
func (s *Set) probeGRPC(ctx context.Context, r *http.Request, e *entry, tr *trace) verdict {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			// gRPC dials with its own context; the probe's trace comes along explicitly.
			return s.tcpDial.DialContext(withTrace(ctx, tr), "tcp", addr)
		}),
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		opts = append(opts, grpc.WithUserAgent(ua))
	}
	conn, err := grpc.NewClient("passthrough:///"+e.target, opts...)
	if err != nil {
		return verdict{status: http.StatusInternalServerError, reason: ReasonError, cause: "cannot create the gRPC client: " + err.Error()}
	}
	defer func() { _ = conn.Close() }()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: grpcService(e)}, grpc.WaitForReady(false))
	if err != nil {
		return explainGRPC(err, tr, e)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return verdict{status: http.StatusServiceUnavailable, reason: ReasonNotServing, cause: "the app answered " + st.String()}
	}
	return verdict{status: http.StatusOK, reason: ReasonOK}
}

func explainGRPC(err error, tr *trace, e *entry) verdict {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unimplemented:
		return verdict{status: http.StatusNotImplemented, reason: ReasonUnimplemented,
			cause: "the app does not implement the gRPC health protocol (grpc.health.v1.Health): " + st.Message()}
	case codes.DeadlineExceeded:
		return explainErr(context.DeadlineExceeded, tr, e.timeout, "")
	case codes.Unavailable:
		if derr := tr.dialErr(); derr != nil && !tr.dialed.Load() {
			return explainErr(derr, tr, e.timeout, "")
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return explainErr(err, tr, e.timeout, "")
	}
	return verdict{status: http.StatusBadGateway, reason: ReasonGRPC, cause: fmt.Sprintf("gRPC %s: %s", st.Code(), st.Message())}
}
