package admin

import (
	"log/slog"
	"net/http"
	"net/netip"
)

// Who may call the admin API. Istio binds it to 127.0.0.1 inside the pod, so only the pod's
// own processes reach it. In local mode every workload shares loopback, so the sidecar also
// checks the caller: LocalCallers admits the operator's address (127.0.0.1, ::1) and the
// workload's own addresses, and refuses every other workload's address, so no workload (nor
// a request one forwards through its sidecar, which connects from its address) can read
// another proxy's configuration, change its log levels or stop it.

// LocalCallers admits 127.0.0.1, ::1 and the addresses given (the workload's own: its
// sidecar's and its app's); invalid addresses are skipped.
func LocalCallers(own ...netip.Addr) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		a = a.Unmap()
		if a == netip.MustParseAddr("127.0.0.1") || a == netip.IPv6Loopback() {
			return true
		}
		for _, o := range own {
			if o.IsValid() && a == o.Unmap() {
				return true
			}
		}
		return false
	}
}

// allowed answers 403 to a caller Callers refuses (false: answered).
func (s *server) allowed(w http.ResponseWriter, r *http.Request) bool {
	if s.o.Callers == nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err == nil && s.o.Callers(ap.Addr()) {
		return true
	}
	s.logf(slog.LevelWarn, "admin request refused: caller is not this workload or localhost", "remote", r.RemoteAddr, "path", r.URL.Path)
	text(w, http.StatusForbidden, "Only requests from localhost and this workload's own addresses are allowed\n")
	return false
}
