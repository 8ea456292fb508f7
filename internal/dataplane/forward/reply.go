package forward

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// localReply sends a response the proxy generated because of an error: Envoy's status and
// body, the response flag and details in the Info, and x-lucid-error with the explanation.
func (x *exchange) localReply(code int, flag streaminfo.Flag, details, body, explanation string) {
	info := x.info
	info.Flags |= flag
	info.ResponseCode = code
	info.ResponseCodeDetails = details
	info.LucidError = LucidError(info.Flags, explanation) // flags.go: shared with lucid why
	h := x.w.Header()
	h.Set("X-Lucid-Error", info.LucidError)
	if !x.writeGRPCLocal(code, body) { // grpc.go: gRPC requests get a trailers-only reply
		x.writeLocal(code, body)
	}
	if x.f.log.Enabled(x.r.Context(), slog.LevelDebug) {
		x.f.log.Debug("local reply", "code", code, "flags", info.Flags.String(), "error", info.LucidError)
	}
}

// configuredReply sends a redirect or direct response: the route asked for it, so it
// carries no x-lucid-error.
func (x *exchange) configuredReply(code int, body string) {
	x.info.ResponseCode = code
	x.info.ResponseCodeDetails = "direct_response"
	x.writeLocal(code, body)
}

func (x *exchange) writeLocal(code int, body string) {
	h := x.w.Header()
	server := "envoy"
	if x.in.HTTP != nil && x.in.HTTP.ServerName != "" {
		server = x.in.HTTP.ServerName
	}
	h.Set("Server", server)
	if body != "" {
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
	} else if code != http.StatusNotModified && code >= 200 {
		h.Set("Content-Length", "0")
	}
	x.w.WriteHeader(code)
	if body != "" && x.r.Method != http.MethodHead {
		n, err := x.w.Write([]byte(body))
		x.info.BytesSent += int64(n)
		if err != nil {
			x.info.Flags |= streaminfo.DownstreamConnectionTermination
		}
	}
}

// explainNoCluster says why a cluster does not exist, reading Istio's cluster name
// "direction|port|subset|host".
func explainNoCluster(name string) string {
	if name == "" {
		return "the route selects no cluster (every weight is 0)"
	}
	q := strconv.Quote(name)
	parts := strings.Split(name, "|")
	if len(parts) == 4 && (parts[0] == "outbound" || parts[0] == "inbound") {
		port, subset, host := parts[1], parts[2], parts[3]
		if subset != "" {
			return "cluster " + q + " not found: no DestinationRule defines subset " + strconv.Quote(subset) + " for " + host
		}
		return "cluster " + q + " not found: no service " + host + " with port " + port + " is known to this proxy"
	}
	return "cluster " + q + " not found"
}

func itoa(n int) string { return strconv.Itoa(n) }
