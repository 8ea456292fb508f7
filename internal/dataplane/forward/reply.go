package forward

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// reply sends an answer the proxy makes itself (decide.go's Reply). A local reply for a
// failure carries Envoy's status and body, the response flag and details in the record,
// and x-lucid-error with the explanation (gRPC requests get it in the trailers-only form,
// grpc.go); a configured one (redirect, direct response) carries no x-lucid-error.
func (x *exchange) reply(rp *Reply) {
	info := x.info
	if rp.Flag == 0 {
		info.ResponseCode = rp.Status
		info.ResponseCodeDetails = rp.Details
		if rp.Location != "" {
			x.w.Header().Set("Location", rp.Location)
		}
		x.configuredHeaders() // configured.go
		x.writeLocal(rp.Status, rp.Body)
		return
	}
	info.Flags |= rp.Flag
	info.ResponseCode = rp.Status
	info.ResponseCodeDetails = rp.Details
	info.LucidError = LucidError(info.Flags, rp.Explanation) // flags.go
	x.w.Header().Set("X-Lucid-Error", info.LucidError)
	if !x.writeGRPCLocal(rp.Status, rp.Body) {
		x.writeLocal(rp.Status, rp.Body)
	}
	if x.f.log.Enabled(x.r.Context(), slog.LevelDebug) {
		x.f.log.Debug("local reply", "code", rp.Status, "flags", info.Flags.String(), "error", info.LucidError)
	}
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
