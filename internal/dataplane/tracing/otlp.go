package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// scopeName is the instrumentation scope of Lucid's spans.
const scopeName = "lucid"

// otlpRequest converts spans to one OTLP ExportTraceServiceRequest with the proxy as the
// resource, encoded. The request message is one repeated field (resource_spans = 1); it is
// written by hand so that the binary does not link the collector package's HTTP gateway.
func otlpRequest(n *Node, spans []*Span) ([]byte, error) {
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", n.ServiceName)}}
	if n.Namespace != "" {
		res.Attributes = append(res.Attributes, kv("k8s.namespace.name", n.Namespace))
	}
	out := make([]*tracepb.Span, 0, len(spans))
	for _, s := range spans {
		ps := &tracepb.Span{
			TraceId:           s.TraceID[:],
			SpanId:            s.SpanID[:],
			TraceState:        s.TraceState,
			Name:              s.Name,
			Kind:              tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: uint64(s.Start.UnixNano()),
			EndTimeUnixNano:   uint64(s.End.UnixNano()),
			Attributes:        make([]*commonpb.KeyValue, 0, len(s.Attrs)),
		}
		if s.Kind == KindClient {
			ps.Kind = tracepb.Span_SPAN_KIND_CLIENT
		}
		if s.Parent.IsValid() {
			ps.ParentSpanId = s.Parent[:]
		}
		for _, a := range s.Attrs {
			ps.Attributes = append(ps.Attributes, kv(a.Key, a.Value))
		}
		if s.Error {
			ps.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
		}
		out = append(out, ps)
	}
	rs, err := proto.Marshal(&tracepb.ResourceSpans{
		Resource:   res,
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: scopeName}, Spans: out}},
	})
	if err != nil {
		return nil, err
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, rs), nil
}

// exportMethod is the OTLP/gRPC trace export call.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// rawCodec sends and receives already encoded protobuf messages (*[]byte).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// partialSuccess reads ExportTraceServiceResponse.partial_success (field 1):
// rejected_spans (1) and error_message (2).
func partialSuccess(resp []byte) (rejected int64, msg string) {
	for len(resp) > 0 {
		num, typ, n := protowire.ConsumeTag(resp)
		if n < 0 {
			return 0, ""
		}
		resp = resp[n:]
		if num != 1 || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, resp)
			if n < 0 {
				return 0, ""
			}
			resp = resp[n:]
			continue
		}
		ps, n := protowire.ConsumeBytes(resp)
		if n < 0 {
			return 0, ""
		}
		resp = resp[n:]
		for len(ps) > 0 {
			num, typ, n := protowire.ConsumeTag(ps)
			if n < 0 {
				return 0, ""
			}
			ps = ps[n:]
			switch {
			case num == 1 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(ps)
				if n < 0 {
					return 0, ""
				}
				rejected, ps = int64(v), ps[n:]
			case num == 2 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(ps)
				if n < 0 {
					return 0, ""
				}
				msg, ps = string(v), ps[n:]
			default:
				n := protowire.ConsumeFieldValue(num, typ, ps)
				if n < 0 {
					return 0, ""
				}
				ps = ps[n:]
			}
		}
	}
	return rejected, msg
}

func kv(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// OTLPGRPC exports to an OpenTelemetry collector's OTLP/gRPC receiver (port 4317 by
// convention), plaintext as Istio's opentelemetry provider without TLS settings does.
type OTLPGRPC struct {
	addr string
	conn *grpc.ClientConn
}

// NewOTLPGRPC connects lazily to addr ("host:port").
func NewOTLPGRPC(addr string) (*OTLPGRPC, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("tracing: otlp grpc %s: %w", addr, err)
	}
	return &OTLPGRPC{addr: addr, conn: conn}, nil
}

// Name implements Sink.
func (o *OTLPGRPC) Name() string { return "otlp grpc://" + o.addr }

// Send implements Sink.
func (o *OTLPGRPC) Send(ctx context.Context, n *Node, spans []*Span) error {
	req, err := otlpRequest(n, spans)
	if err != nil {
		return err
	}
	var resp []byte
	if err := o.conn.Invoke(ctx, exportMethod, &req, &resp, grpc.ForceCodec(rawCodec{})); err != nil {
		return err
	}
	if rejected, msg := partialSuccess(resp); rejected > 0 {
		return fmt.Errorf("collector rejected %d spans: %s", rejected, msg)
	}
	return nil
}

// Close closes the connection.
func (o *OTLPGRPC) Close() error { return o.conn.Close() }

// OTLPHTTP exports to an OTLP/HTTP receiver (port 4318, path /v1/traces by default) in the
// binary protobuf encoding.
type OTLPHTTP struct {
	url     string
	headers http.Header
	client  *http.Client
}

// NewOTLPHTTP exports to url ("http://host:4318/v1/traces"), adding headers to each request.
func NewOTLPHTTP(url string, headers http.Header, timeout time.Duration) *OTLPHTTP {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &OTLPHTTP{url: url, headers: headers, client: &http.Client{Timeout: timeout}}
}

// Name implements Sink.
func (o *OTLPHTTP) Name() string { return "otlp " + o.url }

// Send implements Sink.
func (o *OTLPHTTP) Send(ctx context.Context, n *Node, spans []*Span) error {
	body, err := otlpRequest(n, spans)
	if err != nil {
		return err
	}
	return postBody(ctx, o.client, o.url, "application/x-protobuf", o.headers, body)
}

// postBody POSTs body and wants a 2xx answer.
func postBody(ctx context.Context, c *http.Client, url, contentType string, headers http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
