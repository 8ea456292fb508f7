package demoapp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// The health side of the demo app, for the Kubernetes probe scenarios: a health path that
// answers "success" and can be made to fail after a while, as an app that runs out of
// memory (500 with the error in the body), stops listening (connections refused) or hangs
// (no answer: the probe times out). Requests from the kubelet (User-Agent kube-probe/…,
// which the sidecar's agent passes on) are counted and logged, so `kubectl logs` shows
// that the probes reached the app.

// Failure modes of Config.FailMode.
const (
	FailOOM    = "oom"    // the health path answers 500 with an out-of-memory error
	FailRefuse = "refuse" // the app closes its listener and connections: refused
	FailHang   = "hang"   // the health path never answers
)

// OOMBody is what the health path answers in FailOOM mode.
const OOMBody = "java.lang.OutOfMemoryError: Java heap space"

func (c *Config) validateHealth() error {
	if c.HealthPath != "" && !strings.HasPrefix(c.HealthPath, "/") {
		return fmt.Errorf("--health-path %q: must start with /", c.HealthPath)
	}
	switch c.FailMode {
	case "":
		if c.FailAfter != 0 {
			return errors.New("--fail-after needs --fail-mode (oom, refuse or hang)")
		}
	case FailOOM, FailRefuse, FailHang:
		if c.FailAfter < 0 {
			return fmt.Errorf("--fail-after %v: must not be negative", c.FailAfter)
		}
		if c.FailMode != FailRefuse && c.HealthPath == "" {
			return fmt.Errorf("--fail-mode %s needs --health-path (the path that fails)", c.FailMode)
		}
	default:
		return fmt.Errorf("--fail-mode %q: want oom, refuse or hang", c.FailMode)
	}
	return nil
}

// health is the app's probe counter and failure switch.
type health struct {
	probes  atomic.Int64
	failing atomic.Bool
}

// observe logs a kubelet probe; it reports whether the request is for the health path.
func (a *App) observe(r *http.Request) bool {
	if ua := r.UserAgent(); strings.HasPrefix(ua, "kube-probe/") {
		n := a.health.probes.Add(1)
		a.log.Info("kubelet probe", "n", n, "path", r.URL.Path, "user_agent", ua, "remote", r.RemoteAddr, "failing", a.health.failing.Load())
	}
	return a.cfg.HealthPath != "" && r.URL.Path == a.cfg.HealthPath
}

// serveHealth answers the health path.
func (a *App) serveHealth(w http.ResponseWriter, r *http.Request) {
	if a.health.failing.Load() {
		switch a.cfg.FailMode {
		case FailOOM:
			http.Error(w, OOMBody, http.StatusInternalServerError)
			return
		case FailHang:
			<-r.Context().Done()
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("success\n"))
}

// startFailing arms the failure timer; closeAll closes the listener and connections (refuse).
func (a *App) startFailing(closeAll func()) (stop func()) {
	if a.cfg.FailMode == "" {
		return func() {}
	}
	t := time.AfterFunc(a.cfg.FailAfter, func() {
		a.health.failing.Store(true)
		a.log.Warn("failing on purpose", "mode", a.cfg.FailMode, "after", a.cfg.FailAfter)
		if a.cfg.FailMode == FailRefuse {
			closeAll()
		}
	})
	return func() { t.Stop() }
}
