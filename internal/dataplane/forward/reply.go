package forward

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// reply sends a reply the router decided on (decide.go).
func (x *exchange) reply(rp *Reply) {
	if rp.Flag == 0 {
		if rp.Location != "" {
			x.w.Header().Set("Location", rp.Location)
		}
		x.configuredReply(rp.Status, rp.Body)
		return
	}
	x.localReply(rp.Status, rp.Flag, rp.Details, rp.Body, rp.Explanation)
}

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

func itoa(n int) string { return strconv.Itoa(n) }
