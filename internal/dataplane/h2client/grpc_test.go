package h2client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
)

// grpcServer is a real grpc-go server (health and reflection services) on a loopback
// port; ended receives each streaming call's error as the server saw it.
func grpcServer(t *testing.T) (addr string, hs *health.Server, ended chan error) {
	t.Helper()
	ended = make(chan error, 8)
	srv := grpc.NewServer(grpc.StreamInterceptor(func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		err := h(s, ss)
		if ss.Context().Err() != nil {
			err = ss.Context().Err()
		}
		ended <- err
		return err
	}))
	hs = health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return ln.Addr().String(), hs, ended
}

func grpcFrame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(f[1:], uint32(len(b)))
	return append(f, b...)
}

func readGRPC(t *testing.T, r io.Reader, m proto.Message) error {
	t.Helper()
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return proto.Unmarshal(b, m)
}

func grpcReq(ctx context.Context, t *testing.T, addr, method string, body io.Reader) *http.Request {
	t.Helper()
	req := newReq(ctx, t, http.MethodPost, "http://"+addr+method, body)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	return req
}

// Unary: the message comes back and grpc-status arrives as a response trailer.
func TestGRPCUnary(t *testing.T) {
	addr, _, _ := grpcServer(t)
	cc := dial(t, addr, Config{})
	body := bytes.NewReader(grpcFrame(t, &healthpb.HealthCheckRequest{}))
	resp, err := cc.RoundTrip(grpcReq(t.Context(), t, addr, "/grpc.health.v1.Health/Check", io.NopCloser(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got healthpb.HealthCheckResponse
	if err := readGRPC(t, resp.Body, &got); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if got.Status != healthpb.HealthCheckResponse_SERVING || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("status %v, trailers %v", got.Status, resp.Trailer)
	}
}

// Server streaming: each status change arrives as its own message while the call is
// open; the request context's deadline resets the stream, which the server sees.
func TestGRPCServerStreamingDeadline(t *testing.T) {
	addr, hs, ended := grpcServer(t)
	cc := dial(t, addr, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	body := bytes.NewReader(grpcFrame(t, &healthpb.HealthCheckRequest{}))
	resp, err := cc.RoundTrip(grpcReq(ctx, t, addr, "/grpc.health.v1.Health/Watch", io.NopCloser(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m healthpb.HealthCheckResponse
	if err := readGRPC(t, resp.Body, &m); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first message %v, %v", m.Status, err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if err := readGRPC(t, resp.Body, &m); err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("second message %v, %v", m.Status, err)
	}
	cancel() // as a deadline would
	if err := readGRPC(t, resp.Body, &m); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after the deadline: %v, want the context's error", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("server saw %v, want its stream cancelled", err)
	}
}

// Bidirectional streaming: requests written after RoundTrip returned are answered one by
// one, and closing the request stream ends the call with status 0.
func TestGRPCBidi(t *testing.T) {
	addr, _, _ := grpcServer(t)
	cc := dial(t, addr, Config{})
	pr, pw := io.Pipe()
	msg := grpcFrame(t, &reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}})
	// grpc-go sends the response headers with the first answer: the first request goes
	// out while RoundTrip waits.
	wrote := make(chan error, 1)
	go func() { _, err := pw.Write(msg); wrote <- err }()
	resp, err := cc.RoundTrip(grpcReq(t.Context(), t, addr, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", pr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if i > 0 {
			if _, err := pw.Write(msg); err != nil {
				t.Fatal(err)
			}
		}
		var m reflectpb.ServerReflectionResponse
		if err := readGRPC(t, resp.Body, &m); err != nil {
			t.Fatal(err)
		}
		if n := len(m.GetListServicesResponse().GetService()); n != 3 {
			t.Fatalf("%d services listed, want 3 (health, reflection v1 and v1alpha)", n)
		}
	}
	_ = pw.Close()
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Fatalf("end of call: %q, %v", rest, err)
	}
	if s := resp.Trailer.Get("Grpc-Status"); s != "0" {
		t.Fatalf("grpc-status %q, want 0", s)
	}
}
