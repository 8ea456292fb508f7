package forward

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// fault applies fault injection (Envoy's fault filter with the route's configuration):
// delay, then abort, each drawn by its percentage. It reports whether the request ended.
func (x *exchange) fault(ft *resource.Fault) bool {
	if ft.Delay > 0 && hit(ft.DelayPercent) {
		x.info.Flags |= streaminfo.DelayInjected
		t := time.NewTimer(ft.Delay)
		select {
		case <-t.C:
		case <-x.r.Context().Done():
			t.Stop()
			x.downstreamGone()
			return true
		}
	}
	if (ft.AbortStatus > 0 || ft.AbortGRPC >= 0) && hit(ft.AbortPercent) {
		if ft.AbortStatus == 0 && ft.AbortGRPC >= 0 {
			// gRPC abort: a trailers-only response with HTTP 200.
			h := x.w.Header()
			h.Set("Content-Type", "application/grpc")
			h.Set("Grpc-Status", itoa(ft.AbortGRPC))
			h.Set("Grpc-Message", "fault filter abort")
			x.reply(&Reply{Status: http.StatusOK, Flag: streaminfo.FaultInjected, Details: "fault_filter_abort",
				Explanation: "fault injection aborted the request with grpc-status " + itoa(ft.AbortGRPC) + " (route \"" + x.rt.Name + "\")"})
			return true
		}
		x.reply(&Reply{Status: ft.AbortStatus, Flag: streaminfo.FaultInjected, Details: "fault_filter_abort", Body: "fault filter abort",
			Explanation: "fault injection aborted the request with " + itoa(ft.AbortStatus) + " (route \"" + x.rt.Name + "\")"})
		return true
	}
	return false
}

// hit draws a percentage.
func hit(percent float64) bool {
	if percent >= 100 {
		return true
	}
	return percent > 0 && rand.Float64()*100 < percent
}
