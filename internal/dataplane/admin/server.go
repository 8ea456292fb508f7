package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

func (s *server) configDump(w http.ResponseWriter, r *http.Request) {
	if s.o.ConfigDump == nil {
		unavailable(w, "config dump")
		return
	}
	body, err := s.o.ConfigDump(has(r, "include_eds"))
	if err == nil {
		body, err = shapeConfigDump(body, r.URL.Query()) // configdump.go
		if writeConfigDumpError(w, err) {
			return
		}
	}
	if err != nil {
		s.logf(slog.LevelWarn, "config dump failed", "err", err)
		text(w, http.StatusInternalServerError, fmt.Sprintf("config dump failed: %v\n", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body) //nolint:gosec // G705: JSON re-encoded by configdump.go, served as application/json
}

func (s *server) ready(w http.ResponseWriter, _ *http.Request) {
	state := "LIVE"
	if s.o.State != nil {
		state = s.o.State()
	}
	code := http.StatusOK
	if state != "LIVE" {
		code = http.StatusServiceUnavailable
	}
	text(w, code, state+"\n")
}

func (s *server) quit(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, "OK\n")
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	s.logf(slog.LevelInfo, "quitquitquit requested")
	if s.o.Quit != nil {
		s.o.Quit()
	}
}

type serverInfoJSON struct {
	Version            string         `json:"version"`
	State              string         `json:"state"`
	HotRestartVersion  string         `json:"hot_restart_version"`
	CommandLineOptions map[string]any `json:"command_line_options"`
	Node               nodeJSON       `json:"node"`
	UptimeCurrentEpoch string         `json:"uptime_current_epoch"`
	UptimeAllEpochs    string         `json:"uptime_all_epochs"`
}

type nodeJSON struct {
	ID       string            `json:"id,omitempty"`
	Cluster  string            `json:"cluster,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// serverInfo serves Envoy's /server_info shape (envoy.admin.v3.ServerInfo).
func (s *server) serverInfo(w http.ResponseWriter, _ *http.Request) {
	var si ServerInfo
	if s.o.ServerInfo != nil {
		si = s.o.ServerInfo()
	}
	if si.State == "" && s.o.State != nil {
		si.State = s.o.State()
	}
	uptime := strconv.FormatInt(int64(si.Uptime.Seconds()), 10) + "s"
	out := serverInfoJSON{
		Version:            si.Version,
		State:              si.State,
		HotRestartVersion:  "disabled",
		CommandLineOptions: map[string]any{},
		Node:               nodeJSON{ID: si.NodeID, Cluster: si.Cluster, Metadata: si.Metadata},
		UptimeCurrentEpoch: uptime,
		UptimeAllEpochs:    uptime,
	}
	writeJSON(w, out)
}

type listenersJSON struct {
	ListenerStatuses []listenerStatusJSON `json:"listener_statuses"`
}

type listenerStatusJSON struct {
	Name         string      `json:"name"`
	LocalAddress addressJSON `json:"local_address"`
}

// listeners serves Envoy's /listeners: "name::address" lines, or ?format=json.
func (s *server) listeners(w http.ResponseWriter, r *http.Request) {
	if s.o.Listeners == nil {
		unavailable(w, "listeners")
		return
	}
	ls := s.o.Listeners()
	if r.URL.Query().Get("format") == "json" {
		out := listenersJSON{ListenerStatuses: make([]listenerStatusJSON, 0, len(ls))}
		for _, l := range ls {
			out.ListenerStatuses = append(out.ListenerStatuses, listenerStatusJSON{Name: l.Name, LocalAddress: toAddress(l.Address)})
		}
		writeJSON(w, out)
		return
	}
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Name + "::" + l.Address + "\n")
	}
	text(w, http.StatusOK, b.String())
}

// stats serves Envoy's /stats: ?filter=<re2>, ?usedonly, ?format=json|prometheus|text.
func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	if s.o.Stats == nil {
		unavailable(w, "stats")
		return
	}
	q := r.URL.Query()
	format := q.Get("format")
	if format == "prometheus" {
		s.o.Stats.PrometheusHandler().ServeHTTP(w, r)
		return
	}
	var filter *regexp.Regexp
	if f := q.Get("filter"); f != "" {
		re, err := regexp.Compile(f)
		if err != nil {
			text(w, http.StatusBadRequest, "Invalid re2 regex\n")
			return
		}
		filter = re
	}
	usedOnly := has(r, "usedonly")
	var buf bytes.Buffer
	switch format {
	case "", "text":
		if err := s.o.Stats.WriteText(&buf, filter, usedOnly); err != nil {
			text(w, http.StatusInternalServerError, err.Error()+"\n")
			return
		}
		text(w, http.StatusOK, buf.String())
	case "json":
		if err := s.o.Stats.WriteJSON(&buf, filter, usedOnly); err != nil {
			text(w, http.StatusInternalServerError, err.Error()+"\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(buf.Bytes())
	default:
		text(w, http.StatusNotFound, "usage: /stats?format=(json|prometheus|text)\n")
	}
}

func (s *server) prometheus(w http.ResponseWriter, r *http.Request) {
	if s.o.Stats == nil {
		unavailable(w, "stats")
		return
	}
	s.o.Stats.PrometheusHandler().ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		text(w, http.StatusInternalServerError, err.Error()+"\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}
