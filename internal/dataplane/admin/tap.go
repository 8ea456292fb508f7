package admin

import (
	"encoding/json"
	"net/http"

	"github.com/lucid-mesh/lucid/internal/dataplane/tap"
)

// tapStream serves /tap: the requests this proxy finishes from now on, one JSON
// contract.TapEvent per line, filtered and rate limited by the query (tap.ParseFilter),
// until the client goes away or the proxy stops. Lucid's own endpoint; Envoy has /tap
// only as a POST with a tap config.
func (s *server) tapStream(w http.ResponseWriter, r *http.Request) {
	if s.o.Tap == nil {
		unavailable(w, "tap")
		return
	}
	f, err := tap.ParseFilter(r.URL.Query())
	if err != nil {
		text(w, http.StatusBadRequest, "tap: "+err.Error()+"\n")
		return
	}
	sub, err := s.o.Tap.Subscribe(f)
	if err != nil {
		text(w, http.StatusServiceUnavailable, err.Error()+"\n")
		return
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // the client sees the stream open before the first request
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var reported uint64
	for {
		select {
		case ev := <-sub.Events():
			for more := true; more; {
				if d := sub.Dropped(); d != reported {
					ev.Skipped, reported = d-reported, d
				}
				if enc.Encode(ev) != nil {
					return
				}
				select { // write what is already waiting, then flush once
				case ev = <-sub.Events():
				default:
					more = false
				}
			}
			if rc.Flush() != nil {
				return
			}
		case <-sub.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}
