package h2server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/dataplane/h2server"
)

// grpcService implements the call kinds the tests use.
type grpcService struct {
	testpb.UnimplementedTestServiceServer
	cancelled chan struct{}
}

func (grpcService) UnaryCall(ctx context.Context, in *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if s := in.GetResponseStatus(); s != nil {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-detail", "from-server"))
		return nil, status.Error(codes.Code(s.GetCode()), s.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: in.GetPayload()}, nil
}

func (grpcService) StreamingOutputCall(in *testpb.StreamingOutputCallRequest, s testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range in.GetResponseParameters() {
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (g grpcService) FullDuplexCall(s testpb.TestService_FullDuplexCallServer) error {
	for {
		in, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// The client's reset fails the body first and then cancels the context (as
			// with net/http's server): wait for the context.
			t := time.NewTimer(10 * time.Second)
			defer t.Stop()
			select {
			case <-s.Context().Done():
				close(g.cancelled)
			case <-t.C:
			}
			return err
		}
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: in.GetPayload()}); err != nil {
			return err
		}
	}
}

// TestGRPC: grpc-go's server (its ServeHTTP) behind h2server, called by grpc-go's client:
// unary with trailers and a status, server streaming, bidi, and a cancelled call reaching
// the server's stream context.
func TestGRPC(t *testing.T) {
	svc := grpcService{cancelled: make(chan struct{})}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, svc)
	defer gs.Stop()
	addr := serve(t, &h2server.Server{Handler: gs})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testpb.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}})
	if err != nil || string(resp.GetPayload().GetBody()) != "hi" {
		t.Fatalf("unary: %v %v", resp, err)
	}
	var trailer metadata.MD
	_, err = client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}}, grpc.Trailer(&trailer))
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "no such thing" || trailer.Get("x-detail")[0] != "from-server" {
		t.Errorf("unary error: %v, trailer %v", err, trailer)
	}

	stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 100000}, {Size: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("server streaming: %v", err)
		}
		sizes = append(sizes, len(m.GetPayload().GetBody()))
	}
	if len(sizes) != 3 || sizes[1] != 100000 {
		t.Errorf("server streaming: %v", sizes)
	}

	bidi, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"a", "bb", "ccc"} {
		if err := bidi.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(m)}}); err != nil {
			t.Fatal(err)
		}
		got, err := bidi.Recv()
		if err != nil || string(got.GetPayload().GetBody()) != m {
			t.Fatalf("bidi %q: %v %v", m, got, err)
		}
	}
	_ = bidi.CloseSend()
	if _, err := bidi.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("bidi end: %v", err)
	}

	cctx, ccancel := context.WithCancel(ctx)
	bidi, err = client.FullDuplexCall(cctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = bidi.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}})
	if _, err := bidi.Recv(); err != nil {
		t.Fatal(err)
	}
	ccancel()
	select {
	case <-svc.cancelled:
	case <-ctx.Done():
		t.Fatal("the cancelled call's server stream was not cancelled")
	}

	dctx, dcancel := context.WithTimeout(ctx, time.Millisecond)
	defer dcancel()
	<-dctx.Done()
	if _, err := client.UnaryCall(dctx, &testpb.SimpleRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("call past its deadline: %v", err)
	}
}
