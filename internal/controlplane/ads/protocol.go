package ads

import (
	"strconv"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
)

// request is a DiscoveryRequest or a DeltaDiscoveryRequest in one form.
type request struct {
	typeURL string
	node    *corepb.Node
	nonce   string // response_nonce: the response this request answers
	nack    string // error_detail's message: the response was rejected ("" = accepted)
	version string // SotW version_info (what the client holds)

	// SotW: the whole subscription.
	names []string
	// Delta: changes to the subscription, and on a stream's first request of a type what
	// the client already has (from an earlier stream).
	subscribe, unsubscribe []string
	initial                map[string]string
}

// response is what a push or a request sends: resources that are new or changed, and
// (delta only) names that are gone.
type response struct {
	typeURL   string
	version   string
	nonce     string
	resources []*resource
	removed   []string
}

// stream is one protocol's side of a gRPC stream.
type stream interface {
	recv() (*request, error)
	send(*response) error
	delta() bool
	context() grpc.ServerStream
}

// sotwStream is a state-of-the-world stream (ADS or one type).
type sotwStream struct {
	st  grpc.BidiStreamingServer[discoverygrpc.DiscoveryRequest, discoverygrpc.DiscoveryResponse]
	enc *encodeCache // encoded.go
}

func (s sotwStream) recv() (*request, error) {
	r, err := s.st.Recv()
	if err != nil {
		return nil, err
	}
	return &request{
		typeURL: r.GetTypeUrl(), node: r.GetNode(), nonce: r.GetResponseNonce(),
		nack: nackMessage(r.GetErrorDetail().GetMessage(), r.GetErrorDetail() != nil), version: r.GetVersionInfo(),
		names: r.GetResourceNames(),
	}, nil
}

func (s sotwStream) send(r *response) error {
	body, err := s.enc.encoded(false, r)
	if err != nil {
		return err
	}
	return s.st.SendMsg(&encodedResponse{body: body, nonce: r.nonce})
}

func (sotwStream) delta() bool                  { return false }
func (s sotwStream) context() grpc.ServerStream { return s.st }

// deltaStream is an incremental stream (ADS or one type).
type deltaStream struct {
	st  grpc.BidiStreamingServer[discoverygrpc.DeltaDiscoveryRequest, discoverygrpc.DeltaDiscoveryResponse]
	enc *encodeCache // encoded.go
}

func (s deltaStream) recv() (*request, error) {
	r, err := s.st.Recv()
	if err != nil {
		return nil, err
	}
	return &request{
		typeURL: r.GetTypeUrl(), node: r.GetNode(), nonce: r.GetResponseNonce(),
		nack:      nackMessage(r.GetErrorDetail().GetMessage(), r.GetErrorDetail() != nil),
		subscribe: r.GetResourceNamesSubscribe(), unsubscribe: r.GetResourceNamesUnsubscribe(),
		initial: r.GetInitialResourceVersions(),
	}, nil
}

func (s deltaStream) send(r *response) error {
	body, err := s.enc.encoded(true, r)
	if err != nil {
		return err
	}
	return s.st.SendMsg(&encodedResponse{body: body, nonce: r.nonce})
}

func (deltaStream) delta() bool                  { return true }
func (s deltaStream) context() grpc.ServerStream { return s.st }

// nackMessage is a NACK's reason; a rejection without a message still is one.
func nackMessage(msg string, rejected bool) string {
	if rejected && msg == "" {
		return "rejected without a reason"
	}
	return msg
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
