package demoapp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// WatchEvent is one line of a watch answer, shaped like a Kubernetes watch event.
type WatchEvent struct {
	Type   string      `json:"type"` // ADDED first, then MODIFIED
	Object WatchObject `json:"object"`
}

// WatchObject is the watched object: which server sent it and a growing resourceVersion,
// so a client can tell which upstream its stream is pinned to and whether it still moves.
type WatchObject struct {
	Kind            string `json:"kind"`
	Name            string `json:"name"`
	Server          string `json:"server"`  // --name
	Version         string `json:"version"` // --version
	ResourceVersion string `json:"resourceVersion"`
}

func isWatch(r *http.Request) bool {
	v := r.URL.Query().Get("watch")
	return v == "true" || v == "1"
}

// watch streams one event per WatchInterval until the client or the app goes away.
func (a *App) watch(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	tick := time.NewTicker(a.cfg.WatchInterval)
	defer tick.Stop()
	a.log.Info("watch started", "remote", r.RemoteAddr, "path", r.URL.Path, "proto", r.Proto)
	for n := 1; ; n++ {
		ev := WatchEvent{Type: "MODIFIED", Object: WatchObject{
			Kind: "ConfigMap", Name: "demo", Server: a.cfg.Name, Version: a.cfg.Version,
			ResourceVersion: strconv.Itoa(n),
		}}
		if n == 1 {
			ev.Type = "ADDED"
		}
		if err := enc.Encode(ev); err != nil {
			a.log.Info("watch ended", "remote", r.RemoteAddr, "events", n-1, "error", err)
			return
		}
		if err := rc.Flush(); err != nil {
			a.log.Info("watch ended", "remote", r.RemoteAddr, "events", n, "error", err)
			return
		}
		select {
		case <-r.Context().Done():
			a.log.Info("watch ended", "remote", r.RemoteAddr, "events", n, "reason", "client or app gone")
			return
		case <-tick.C:
		}
	}
}
