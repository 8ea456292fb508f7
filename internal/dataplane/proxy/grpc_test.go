package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// testService implements the four gRPC call kinds.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s := in.GetResponseStatus(); s != nil {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-detail", "from-server"))
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (testService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, s testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(s testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
}

func (testService) FullDuplexCall(s testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

func startGRPCServer(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testpb.RegisterTestServiceServer(s, testService{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
}

// applyRoutes installs one bound HTTP listener at addr with prefix → cluster routes; each
// cluster is HTTP/2 (HTTP/1.1 when its name starts with "h1") with the given endpoints.
func applyRoutes(t *testing.T, p *Proxy, addr string, routes [][2]string, clusters map[string][]string) {
	t.Helper()
	vh := resource.VirtualHost{Name: "vh", Domains: []string{"*"}}
	for _, r := range routes {
		vh.Routes = append(vh.Routes, resource.Route{Name: r[1], Match: resource.RouteMatch{PathKind: resource.PathPrefix, Path: r[0], CaseSensitive: true}, Action: &resource.RouteAction{Cluster: r[1]}})
	}
	snap := &resource.Snapshot{
		Listeners: map[string]*resource.Listener{"l": {Name: "l", Address: netip.MustParseAddrPort(addr), BindToPort: true, Direction: resource.Outbound,
			FilterChains: []resource.FilterChain{{HTTP: &resource.HTTPManager{Routes: &resource.RouteConfig{Name: "r", VirtualHosts: []resource.VirtualHost{vh}}}}}}},
		Routes: map[string]*resource.RouteConfig{}, Clusters: map[string]*resource.Cluster{}, Endpoints: map[string]*resource.Endpoints{},
	}
	for name, eps := range clusters {
		c := &resource.Cluster{Name: name, Type: resource.Static, ConnectTimeout: time.Second, Protocol: resource.HTTP2, LoadAssignment: &resource.Endpoints{ClusterName: name}}
		for _, a := range eps {
			ap := netip.MustParseAddrPort(a)
			c.LoadAssignment.Endpoints = append(c.LoadAssignment.Endpoints, resource.Endpoint{Address: ap, Port: uint32(ap.Port()), Weight: 1})
		}
		if strings.HasPrefix(name, "h1") {
			c.Protocol = resource.HTTP1
		}
		snap.Clusters[name] = c
	}
	if err := p.Apply(snap); err != nil {
		t.Fatal(err)
	}
}

func TestGRPCThroughSidecar(t *testing.T) {
	const app, side = "127.0.93.31:9090", "127.0.93.3:9090"
	startGRPCServer(t, app)
	sp := newStreamProxy(t, "127.0.93.3", 200*time.Millisecond)
	routes := [][2]string{{"/grpc.testing.TestService/EmptyCall", "empty"}, {"/", "grpc"}}
	applyRoutes(t, sp.p, side, routes, map[string][]string{"grpc": {app}, "empty": nil})
	conn, err := grpc.NewClient(side, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := testpb.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("unary", func(t *testing.T) {
		r, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}})
		if err != nil || string(r.GetPayload().GetBody()) != "hello" {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("status and trailers pass through", func(t *testing.T) {
		var tr metadata.MD
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}}, grpc.Trailer(&tr))
		if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing" {
			t.Fatalf("status %v", err)
		}
		if got := tr.Get("x-detail"); len(got) != 1 || got[0] != "from-server" {
			t.Fatalf("trailer x-detail = %v", got)
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		var params []*testpb.ResponseParameters
		for range 50 {
			params = append(params, &testpb.ResponseParameters{Size: 1000})
		}
		s, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 50 {
			t.Fatalf("got %d messages", n)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		s, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if err := s.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, 100)}}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := s.CloseAndRecv()
		if err != nil || r.GetAggregatedPayloadSize() != 2000 {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("bidirectional, many concurrent streams", func(t *testing.T) {
		errs := make(chan error, 20)
		for i := range 20 {
			go func() {
				s, err := c.FullDuplexCall(ctx)
				if err != nil {
					errs <- err
					return
				}
				for j := range 10 {
					msg := []byte{byte(i), byte(j)}
					if err := s.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: msg}}); err != nil {
						errs <- err
						return
					}
					r, err := s.Recv()
					if err != nil || string(r.GetPayload().GetBody()) != string(msg) {
						errs <- errors.Join(err, errors.New("echo mismatch"))
						return
					}
				}
				errs <- s.CloseSend()
			}()
		}
		for range 20 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("proxy error is a gRPC status", func(t *testing.T) {
		var hdr metadata.MD // a trailers-only response: its headers are the trailers
		_, err := c.EmptyCall(ctx, &testpb.Empty{}, grpc.Trailer(&hdr))
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || st.Message() != "no healthy upstream" {
			t.Fatalf("got %v, want UNAVAILABLE \"no healthy upstream\"", err)
		}
		if e := hdr.Get("x-lucid-error"); len(e) != 1 || !strings.HasPrefix(e[0], "UH: ") {
			t.Fatalf("x-lucid-error = %v", e)
		}
		info := waitInfo(t, sp.log, func(i *streaminfo.Info) bool { return strings.HasSuffix(i.Path, "EmptyCall") })
		if info.ResponseCode != 200 || info.Flags != streaminfo.NoHealthyUpstream || info.GRPCStatus != "14" {
			t.Fatalf("access log: %d %s grpc-status %s", info.ResponseCode, info.Flags, info.GRPCStatus)
		}
	})
	t.Run("stream on a removed endpoint ends with UNAVAILABLE", func(t *testing.T) {
		s, err := c.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		applyRoutes(t, sp.p, side, routes, map[string][]string{"grpc": nil, "empty": nil}) // the endpoint leaves
		_, err = s.Recv()                                                                  // ends after the 200 ms grace
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "left cluster grpc") {
			t.Fatalf("got %v, want UNAVAILABLE naming the removed endpoint", err)
		}
		info := waitInfo(t, sp.log, func(i *streaminfo.Info) bool {
			return strings.HasSuffix(i.Path, "FullDuplexCall") && i.Flags&streaminfo.LocalReset != 0
		})
		if info.ResponseCodeDetails != "upstream_reset_after_response_started{local_reset}" {
			t.Fatalf("details %q", info.ResponseCodeDetails)
		}
	})
}
