package ads

import "google.golang.org/grpc"

// extraService is a gRPC service served on the xDS port beside ADS.
type extraService struct {
	desc *grpc.ServiceDesc
	impl any
}

// RegisterService adds a gRPC service to the xDS port, so proxies reach it over the
// connection they already hold (the probe-failure events of internal/controlplane/podevent). Call it
// before Serve.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.extra = append(s.extra, extraService{desc: desc, impl: impl})
}
