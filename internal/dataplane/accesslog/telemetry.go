package accesslog

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Router writes each request's (and opaque TCP connection's) line where its listener's
// access logs say (the Telemetry API's accessLogging, decoded into
// resource.HTTPManager.AccessLogs and resource.TCPProxy.AccessLogs): to each file whose
// CEL filter the request matches, or nowhere. A listener with no access logs of its own
// (nil) uses the proxy's logger (--access-log), which logs every request, as Istio falls
// back on meshConfig.accessLogFile when no Telemetry configures access logging.
//
// Files are opened on first use and kept until Close; a line is in its access log's own
// format (the provider's logFormat) or else in the proxy's encoding. A listener without a filter costs what the plain logger costs: no attribute
// is built. Safe for concurrent use.
type Router struct {
	def     *Logger // the proxy's own; nil: none
	defPath string
	format  Format
	log     *slog.Logger

	mu     sync.Mutex // guards files and closed
	files  map[string]*routedFile
	closed bool
}

type routedFile struct {
	l     *Logger
	close func()
}

// NewRouter returns a router whose fallback is def (writing to defPath; nil: the proxy
// logs nothing by default) and whose files write in format f; open failures are logged
// to log once per path.
func NewRouter(def *Logger, defPath string, f Format, log *slog.Logger) *Router {
	return &Router{def: def, defPath: defPath, format: f, log: log, files: map[string]*routedFile{}}
}

// Log writes info's line to the listener's access logs (logs), or to the proxy's logger
// when the listener has none; h are the downstream request's headers, which filters read
// (request.headers).
func (r *Router) Log(info *streaminfo.Info, logs []resource.AccessLog, h http.Header) {
	if logs == nil { // the proxy's logger: no attributes to build
		r.writeDefault(info)
		return
	}
	r.write(info, logs, &attributes{in: info, h: h})
}

// LogConnection writes the line of an opaque TCP connection (a tcp_proxy chain's) to the
// chain's access logs (logs), or to the proxy's logger when the chain has none. Filters
// read the connection's attributes: request.* is absent, as in Envoy, so an expression
// about the request is false for a connection.
func (r *Router) LogConnection(info *streaminfo.Info, logs []resource.AccessLog) {
	if logs == nil {
		r.writeDefault(info)
		return
	}
	r.write(info, logs, &attributes{in: info, tcp: true})
}

// writeDefault writes info's line to the proxy's logger, if it has one.
func (r *Router) writeDefault(info *streaminfo.Info) {
	if r.def != nil {
		r.def.Log(info)
	}
}

// write writes info's line to each of logs whose filter matches act.
func (r *Router) write(info *streaminfo.Info, logs []resource.AccessLog, act *attributes) {
	for i := range logs {
		al := &logs[i]
		if al.Path == resource.DevNull {
			continue
		}
		if al.Filter != nil && !al.Filter.Match(act) {
			continue
		}
		if l := r.logger(al.Path); l != nil {
			if al.Format != nil {
				l.LogWith(info, act.h, al.Format) // custom.go
			} else {
				l.Log(info)
			}
		}
	}
}

// logger is the logger writing to path: the proxy's own when it writes there, else one
// opened now (nil when it cannot be).
func (r *Router) logger(path string) *Logger {
	if r.def != nil && (path == r.defPath || sameStream(path, r.defPath)) {
		return r.def
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.files[path]; ok || r.closed {
		if f == nil {
			return nil
		}
		return f.l
	}
	w, closeW, err := OpenFile(path)
	if err != nil {
		r.files[path] = nil // not tried again
		if r.log != nil {
			r.log.Error("cannot open the access log a Telemetry resource asks for; its lines are dropped", "path", path, "error", err)
		}
		return nil
	}
	f := &routedFile{l: New(w, r.format), close: closeW}
	r.files[path] = f
	return f.l
}

// sameStream reports whether a and b name the same standard stream.
func sameStream(a, b string) bool {
	std := func(p string) string {
		switch p {
		case "/dev/stdout", "-":
			return "stdout"
		case "/dev/stderr":
			return "stderr"
		}
		return p
	}
	return std(a) == std(b)
}

// Failed is the number of lines dropped because a writer failed, the proxy's own
// logger's included.
func (r *Router) Failed() uint64 {
	var n uint64
	if r.def != nil {
		n = r.def.Failed()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.files {
		if f != nil {
			n += f.l.Failed()
		}
	}
	return n
}

// Close closes the files the router opened (not the proxy's own logger); later lines to
// them are dropped.
func (r *Router) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, f := range r.files {
		if f != nil {
			_ = f.l.Close()
			f.close()
		}
	}
}

// OpenFile opens an access log path as Envoy does: "/dev/stdout" (or "-") and
// "/dev/stderr" are the process's streams, anything else a file appended to (created
// 0644, as Envoy creates them). The returned func closes it.
func OpenFile(path string) (io.Writer, func(), error) {
	switch path {
	case "/dev/stdout", "-":
		return os.Stdout, func() {}, nil
	case "/dev/stderr":
		return os.Stderr, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) //nolint:gosec // G302: access logs are world-readable, as Envoy creates them (0644)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}
