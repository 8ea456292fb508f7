// Package status is the agent's status server (port 15020 on the workload's address):
// the readiness the kubelet (or `lucid up`) asks for. It sits beside the proxy, reading
// the xDS client's sync state and the proxy's listener state; it never touches requests.
//
// Readiness is composed as Istio's is: config received and accepted (CDS and LDS), then
// listeners bound, then not draining. Only transitions are logged.
package status

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
)

// Probe reports why the sidecar is not ready, or nil when it is.
type Probe func() error

// Server serves /healthz/ready.
type Server struct {
	ready Probe
	log   *slog.Logger

	mu      sync.Mutex
	lastErr string // "" when the last check succeeded; "-" before the first check
}

// New returns a status server using ready as its readiness probe.
func New(ready Probe, log *slog.Logger) *Server {
	return &Server{ready: ready, log: log, lastErr: "-"}
}

// Handler returns the status server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz/ready", s.handleReady)
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	err := s.ready()
	s.logTransition(err)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, err.Error())
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) logTransition(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	s.mu.Lock()
	changed := msg != s.lastErr
	s.lastErr = msg
	s.mu.Unlock()
	if !changed {
		return
	}
	if err != nil {
		s.log.Warn("proxy is not ready", "reason", msg)
	} else {
		s.log.Info("proxy is ready")
	}
}
