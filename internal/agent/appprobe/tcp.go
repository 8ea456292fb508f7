package appprobe

import (
	"context"
	"net/http"
)

// probeTCP connects and closes, sending nothing, as the kubelet's TCP probe does.
func (s *Set) probeTCP(ctx context.Context, e *entry, tr *trace) verdict {
	c, err := s.tcpDial.DialContext(ctx, "tcp", e.target)
	if err != nil {
		return explainErr(err, tr, e.timeout, "")
	}
	if err := c.Close(); err != nil {
		s.log.Debug("tcp probe connection not closed cleanly", "target", e.target, "error", err)
	}
	return verdict{status: http.StatusOK, reason: ReasonOK}
}
