package xdsclient

import (
	"fmt"
	"time"

	extauthzpb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extauthztcppb "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	matcherpb "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// defaultExtAuthzTimeout is Envoy's grpc_service/server_uri timeout when unset.
const defaultExtAuthzTimeout = 200 * time.Millisecond

// decodeHTTPExtAuthz converts an envoy.filters.http.ext_authz ExtAuthz.
func decodeHTTPExtAuthz(a *anypb.Any) (*resource.ExtAuthz, error) {
	var m extauthzpb.ExtAuthz
	if err := a.UnmarshalTo(&m); err != nil {
		return nil, err
	}
	if err := validate(&m); err != nil {
		return nil, err
	}
	switch {
	case m.GetFilterEnabled() != nil:
		return nil, fmt.Errorf("filter_enabled: not supported (use filter_enabled_metadata)")
	case m.GetDenyAtDisable() != nil:
		return nil, fmt.Errorf("deny_at_disable: not supported")
	case m.GetShadowMode():
		return nil, fmt.Errorf("shadow_mode: not supported")
	}
	out := &resource.ExtAuthz{
		FailureModeAllow: m.GetFailureModeAllow(),
		StatusOnError:    403,
		Timeout:          defaultExtAuthzTimeout,
	}
	if s := m.GetStatusOnError(); s != nil && s.GetCode() != 0 {
		out.StatusOnError = int(s.GetCode())
	}
	if b := m.GetWithRequestBody(); b != nil {
		out.WithRequestBody, out.MaxRequestBytes, out.AllowPartialMessage = true, b.GetMaxRequestBytes(), b.GetAllowPartialMessage()
	}
	var err error
	if out.AllowedHeaders, err = decodeListStringMatcher(m.GetAllowedHeaders()); err != nil {
		return nil, fmt.Errorf("allowed_headers.%w", err)
	}
	if md := m.GetFilterEnabledMetadata(); md != nil {
		mm, err := decodeMetadataMatcher(md)
		if err != nil {
			return nil, fmt.Errorf("filter_enabled_metadata.%w", err)
		}
		out.FilterEnabledMetadata = &mm
	}
	switch s := m.GetServices().(type) {
	case *extauthzpb.ExtAuthz_GrpcService:
		out.GRPC = true
		out.Cluster = s.GrpcService.GetEnvoyGrpc().GetClusterName()
		out.Timeout = durationOr(s.GrpcService.GetTimeout(), defaultExtAuthzTimeout)
	case *extauthzpb.ExtAuthz_HttpService:
		h := s.HttpService
		if h.GetPathOverride() != "" || h.GetRetryPolicy() != nil {
			return nil, fmt.Errorf("http_service: path_override and retry_policy are not supported")
		}
		out.Cluster = h.GetServerUri().GetCluster()
		out.URI = h.GetServerUri().GetUri()
		out.Timeout = durationOr(h.GetServerUri().GetTimeout(), defaultExtAuthzTimeout)
		out.PathPrefix = h.GetPathPrefix()
		if out.Cluster == "" {
			return nil, fmt.Errorf("http_service.server_uri.cluster: required")
		}
		req := h.GetAuthorizationRequest()
		if req.GetAllowedHeaders() != nil { //nolint:staticcheck // SA1019: older control planes still send it
			extra, err := decodeListStringMatcher(req.GetAllowedHeaders()) //nolint:staticcheck // SA1019: see above
			if err != nil {
				return nil, fmt.Errorf("http_service.authorization_request.allowed_headers.%w", err)
			}
			out.AllowedHeaders = append(out.AllowedHeaders, extra...)
		}
		for _, hv := range req.GetHeadersToAdd() {
			out.HeadersToAdd = append(out.HeadersToAdd, resource.HeaderValueOption{Key: hv.GetKey(), Value: hv.GetValue()})
		}
		resp := h.GetAuthorizationResponse()
		if resp.GetAllowedUpstreamHeadersToAppend() != nil || resp.GetDynamicMetadataFromHeaders() != nil {
			return nil, fmt.Errorf("http_service.authorization_response: allowed_upstream_headers_to_append and dynamic_metadata_from_headers are not supported")
		}
		for _, l := range []struct {
			field string
			in    *matcherpb.ListStringMatcher
			out   *[]resource.StringMatcher
		}{
			{"allowed_upstream_headers", resp.GetAllowedUpstreamHeaders(), &out.AllowedUpstreamHeaders},
			{"allowed_client_headers", resp.GetAllowedClientHeaders(), &out.AllowedClientHeaders},
			{"allowed_client_headers_on_success", resp.GetAllowedClientHeadersOnSuccess(), &out.AllowedClientHeadersOnSuccess},
		} {
			if *l.out, err = decodeListStringMatcher(l.in); err != nil {
				return nil, fmt.Errorf("http_service.authorization_response.%s.%w", l.field, err)
			}
		}
	default:
		return nil, fmt.Errorf("services: http_service or grpc_service required")
	}
	return out, nil
}

// decodeNetworkExtAuthz converts an envoy.filters.network.ext_authz ExtAuthz (gRPC only:
// decoded so that the listener is accepted; such connections fail closed).
func decodeNetworkExtAuthz(a *anypb.Any) (*resource.ExtAuthz, error) {
	var m extauthztcppb.ExtAuthz
	if err := a.UnmarshalTo(&m); err != nil {
		return nil, err
	}
	if err := validate(&m); err != nil {
		return nil, err
	}
	out := &resource.ExtAuthz{
		GRPC:             true,
		Cluster:          m.GetGrpcService().GetEnvoyGrpc().GetClusterName(),
		Timeout:          durationOr(m.GetGrpcService().GetTimeout(), defaultExtAuthzTimeout),
		FailureModeAllow: m.GetFailureModeAllow(),
		StatusOnError:    403,
	}
	if md := m.GetFilterEnabledMetadata(); md != nil {
		mm, err := decodeMetadataMatcher(md)
		if err != nil {
			return nil, fmt.Errorf("filter_enabled_metadata.%w", err)
		}
		out.FilterEnabledMetadata = &mm
	}
	return out, nil
}

func decodeListStringMatcher(l *matcherpb.ListStringMatcher) ([]resource.StringMatcher, error) {
	var out []resource.StringMatcher
	for i, p := range l.GetPatterns() {
		sm, err := decodeStringMatcher(p)
		if err != nil {
			return nil, fmt.Errorf("patterns[%d].%w", i, err)
		}
		out = append(out, sm)
	}
	return out, nil
}
