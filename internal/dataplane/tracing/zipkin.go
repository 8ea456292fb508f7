package tracing

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Zipkin exports Zipkin v2 JSON spans (Istio's zipkin provider: port 9411, path
// /api/v2/spans).
type Zipkin struct {
	url    string
	client *http.Client
}

// NewZipkin exports to url ("http://zipkin:9411/api/v2/spans").
func NewZipkin(url string, timeout time.Duration) *Zipkin {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Zipkin{url: url, client: &http.Client{Timeout: timeout}}
}

// Name implements Sink.
func (z *Zipkin) Name() string { return "zipkin " + z.url }

type zipkinEndpoint struct {
	ServiceName string `json:"serviceName,omitempty"`
}

type zipkinSpan struct {
	TraceID       string            `json:"traceId"`
	ID            string            `json:"id"`
	ParentID      string            `json:"parentId,omitempty"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Timestamp     int64             `json:"timestamp"`
	Duration      int64             `json:"duration"`
	LocalEndpoint zipkinEndpoint    `json:"localEndpoint"`
	Tags          map[string]string `json:"tags,omitempty"`
}

// Send implements Sink.
func (z *Zipkin) Send(ctx context.Context, n *Node, spans []*Span) error {
	out := make([]zipkinSpan, 0, len(spans))
	for _, s := range spans {
		zs := zipkinSpan{TraceID: s.TraceID.String(), ID: s.SpanID.String(), Name: s.Name, Kind: "SERVER",
			Timestamp: s.Start.UnixMicro(), Duration: max(s.End.Sub(s.Start).Microseconds(), 1),
			LocalEndpoint: zipkinEndpoint{ServiceName: n.ServiceName}, Tags: make(map[string]string, len(s.Attrs))}
		if s.Kind == KindClient {
			zs.Kind = "CLIENT"
		}
		if s.Parent.IsValid() {
			zs.ParentID = s.Parent.String()
		}
		for _, a := range s.Attrs {
			zs.Tags[a.Key] = a.Value
		}
		if s.Error {
			zs.Tags["error"] = strconv.FormatBool(true)
		}
		out = append(out, zs)
	}
	body, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return postBody(ctx, z.client, z.url, "application/json", nil, body)
}
