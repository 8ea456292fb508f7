package tracing

import (
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Kind is a span's role, as OpenTelemetry names it.
type Kind uint8

// Span kinds: a sidecar's outbound hop is the client of the call, its inbound hop and a
// gateway the server.
const (
	KindServer Kind = iota
	KindClient
)

// Attr is one span attribute; Envoy's are strings.
type Attr struct{ Key, Value string }

// Span is one finished span, ready to export.
type Span struct {
	Name       string
	Kind       Kind
	TraceID    TraceID
	SpanID     SpanID
	Parent     SpanID // zero for a root span
	TraceState string
	Start, End time.Time
	Attrs      []Attr
	Error      bool // a 5xx, no response, or a local reply with a response flag
}

// Node describes the proxy that makes the spans: its node id, and Istio's identity tags
// (istio.mesh_id, istio.canonical_service, ...). ServiceName is the OpenTelemetry
// service.name, Istio's default "<app label or workload>.<namespace>".
type Node struct {
	ID                string
	ServiceName       string
	MeshID            string
	ClusterID         string
	Namespace         string
	CanonicalService  string
	CanonicalRevision string
	Zone              string
}

// CustomTag is a tag from the Telemetry API's tracing.customTags (or the mesh config's):
// a literal value, a request header (with a default) or an environment variable (with a
// default). It is the listener's own form (resource.TracingTag), so a request that
// starts a span converts nothing.
type CustomTag = resource.TracingTag

// tagValue evaluates tag t for a request.
func tagValue(t *CustomTag, h http.Header) string {
	switch {
	case t.Header != "":
		if v := h.Get(t.Header); v != "" {
			return v
		}
		return t.Default
	case t.Env != "":
		if v, ok := os.LookupEnv(t.Env); ok {
			return v
		}
		return t.Default
	}
	return t.Literal
}

// DefaultMaxPathTagLength is Envoy's max_path_tag_length default: longer http.url values
// are cut.
const DefaultMaxPathTagLength = 256

// attributes builds Envoy's standard HTTP span tags and Istio's, from the finished
// request's record.
func attributes(n *Node, info *streaminfo.Info, scheme string, maxPath int, custom []Attr) []Attr {
	if maxPath <= 0 {
		maxPath = DefaultMaxPathTagLength
	}
	url := scheme + "://" + info.Authority + info.Path
	if len(url) > maxPath {
		url = url[:maxPath]
	}
	status := "0"
	if info.ResponseCode != 0 {
		status = strconv.Itoa(info.ResponseCode)
	}
	flags := info.Flags.String()
	a := make([]Attr, 0, 24+len(custom))
	a = append(a,
		Attr{"node_id", n.ID},
		Attr{"zone", n.Zone},
		Attr{"guid:x-request-id", info.RequestID},
		Attr{"http.url", url},
		Attr{"http.method", info.Method},
		Attr{"downstream_cluster", "-"},
		Attr{"user_agent", orDash(info.UserAgent)},
		Attr{"http.protocol", info.Protocol},
		Attr{"peer.address", info.DownstreamRemoteAddress.Addr().String()},
		Attr{"request_size", strconv.FormatInt(info.BytesReceived, 10)},
		Attr{"response_size", strconv.FormatInt(info.BytesSent, 10)},
		Attr{"http.status_code", status},
		Attr{"response_flags", flags},
		Attr{"component", "proxy"},
	)
	if info.UpstreamCluster != "" {
		a = append(a, Attr{"upstream_cluster", info.UpstreamCluster}, Attr{"upstream_cluster.name", info.UpstreamCluster})
	}
	if info.UpstreamHost != "" {
		a = append(a, Attr{"upstream_address", info.UpstreamHost})
	}
	if info.GRPCStatus != "" {
		a = append(a, Attr{"grpc.status_code", info.GRPCStatus})
	}
	a = append(a,
		Attr{"istio.mesh_id", n.MeshID},
		Attr{"istio.canonical_service", n.CanonicalService},
		Attr{"istio.canonical_revision", n.CanonicalRevision},
		Attr{"istio.namespace", n.Namespace},
		Attr{"istio.cluster_id", n.ClusterID},
	)
	if isError(info) {
		a = append(a, Attr{"error", "true"})
	}
	if info.LucidError != "" {
		a = append(a, Attr{"lucid.error", info.LucidError})
	}
	return append(a, custom...)
}

func isError(info *streaminfo.Info) bool {
	return info.ResponseCode == 0 || info.ResponseCode >= 500 || (info.Flags != 0 && info.ResponseCode >= 400)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
