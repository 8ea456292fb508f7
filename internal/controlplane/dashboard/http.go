package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

//go:embed assets
var assets embed.FS

// Path is where the dashboard is served on the debug port.
const Path = "/dashboard/"

// Register mounts the dashboard on the debug port's mux: the web application under
// /dashboard/, its API under /dashboard/api/, and the tap relay at /debug/tap for
// `lucid tap` and `lucid top`. (The debug port's / is its index, which links here; on
// an address of its own the caller redirects / to Path.)
func (d *Dashboard) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "assets") // embedded: cannot fail
	mux.Handle("GET /dashboard/", d.watch(http.StripPrefix("/dashboard/", noCache(http.FileServerFS(static)))))
	mux.Handle("GET /dashboard/api/graph", d.watch(http.HandlerFunc(d.serveGraph)))
	mux.Handle("GET /dashboard/api/events", d.watch(http.HandlerFunc(d.serveEvents)))
	mux.Handle("GET /dashboard/api/workload", d.watch(http.HandlerFunc(d.serveWorkload)))
	mux.Handle("GET /dashboard/api/tap", d.watch(http.HandlerFunc(d.serveTapEvents)))
	mux.Handle("GET /dashboard/api/findings", d.watch(http.HandlerFunc(d.serveFindings)))
	d.RegisterRelay(mux)
}

// RegisterRelay mounts only the tap relay (/debug/tap), for a debug port that does not
// serve the dashboard itself.
func (d *Dashboard) RegisterRelay(mux *http.ServeMux) {
	mux.HandleFunc("GET "+contract.TapRelayPath, d.serveTapRelay)
}

// noCache makes browsers revalidate the assets, so a new binary's page is always used.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a write error means the client went away
}

func (d *Dashboard) serveGraph(w http.ResponseWriter, _ *http.Request) {
	g, _ := d.current()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(g)
}

// sse starts a server-sent event stream; the browser reconnects after retry ms.
func sse(w http.ResponseWriter) *http.ResponseController {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 1000\n\n")
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return rc
}

// serveEvents streams the graph: now, then every time it changes.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := sse(w)
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		g, changed := d.current()
		if _, err := fmt.Fprintf(w, "event: graph\ndata: %s\n\n", g); err != nil || rc.Flush() != nil {
			return
		}
	wait:
		select {
		case <-changed:
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil || rc.Flush() != nil {
				return
			}
			goto wait
		case <-r.Context().Done():
			return
		case <-d.stopped:
			return
		}
	}
}

func (d *Dashboard) serveWorkload(w http.ResponseWriter, r *http.Request) {
	p, err := d.find(r.URL.Query().Get("name"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	writeJSON(w, d.workload(ctx, p))
}

func (d *Dashboard) serveFindings(w http.ResponseWriter, _ *http.Request) {
	if d.o.Findings == nil {
		writeJSON(w, []any{})
		return
	}
	f, err := d.o.Findings()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, f)
}

// proxyTap opens the tap of the proxy named by ?workload=, with the other parameters as
// its filter (defaults fill what the query lacks). On failure it has answered w. The
// stream ends with the request or when the dashboard stops; call done when finished.
func (d *Dashboard) proxyTap(w http.ResponseWriter, r *http.Request, defaults url.Values) (p proxy, body io.ReadCloser, done func(), ok bool) {
	q := r.URL.Query()
	name := q.Get("workload")
	q.Del("workload")
	for k, v := range defaults {
		if !q.Has(k) {
			q[k] = v
		}
	}
	if name == "" {
		http.Error(w, "workload is required: "+contract.TapRelayPath+"?workload=<name>[.<namespace>]", http.StatusBadRequest)
		return proxy{}, nil, nil, false
	}
	p, err := d.find(name)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return proxy{}, nil, nil, false
	}
	ctx, cancel := d.requestContext(r)
	body, err = d.openTap(ctx, p, q)
	if err != nil {
		cancel()
		tapFailed(w, err)
		return proxy{}, nil, nil, false
	}
	return p, body, func() { _ = body.Close(); cancel() }, true
}

// serveTapRelay relays a proxy's /tap (one JSON event per line) until the client or
// the proxy ends it.
func (d *Dashboard) serveTapRelay(w http.ResponseWriter, r *http.Request) {
	_, body, done, ok := d.proxyTap(w, r, nil)
	if !ok {
		return
	}
	defer done()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil || rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveTapEvents is the workload page's live requests: the proxy's tap as server-sent
// events ("tap"), at most 20 a second.
func (d *Dashboard) serveTapEvents(w http.ResponseWriter, r *http.Request) {
	p, body, done, ok := d.proxyTap(w, r, url.Values{"rps": {"20"}})
	if !ok {
		return
	}
	defer done()
	rc := sse(w)
	err := readTap(body, p, func(ev contract.TapEvent) error {
		b, _ := json.Marshal(ev)
		if _, err := fmt.Fprintf(w, "event: tap\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && r.Context().Err() == nil && !errors.Is(err, context.Canceled) {
		_, _ = fmt.Fprintf(w, "event: tap-error\ndata: %q\n\n", err.Error())
		_ = rc.Flush()
	}
}

// requestContext ends with the request or when the dashboard stops.
func (d *Dashboard) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-d.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func tapFailed(w http.ResponseWriter, err error) {
	var te *tapError
	if errors.As(err, &te) {
		http.Error(w, te.Error(), te.Code)
		return
	}
	http.Error(w, err.Error(), http.StatusBadGateway)
}
