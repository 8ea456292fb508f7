// Package demoapp is the small HTTP service `lucid demo-app` runs in the examples. It is
// not part of the mesh's flow: it is the workload behind a sidecar. Each instance answers
// every request with its name and version and, for each URL it was told to call, calls it
// through its sidecar's outbound proxy (port 15001) and shows the callee's answer inside
// its own. An upstream error stays visible: its status, body and x-lucid-error header are
// shown, never hidden behind a generic failure.
package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ProxyEnv is the environment variable the proxy URL defaults to (`lucid up` sets it to
// the workload sidecar's outbound listener, e.g. http://127.0.10.2:15001).
const ProxyEnv = "LUCID_PROXY"

// propagated are the request headers a demo app copies onto the calls it makes, so a
// request keeps its identity (x-request-id, tracing) and its routing hints (end-user)
// along the whole call chain, as Bookinfo's services do.
var propagated = []string{
	"x-request-id",
	"end-user",
	"traceparent", "tracestate",
	"x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3",
}

// maxBody bounds how much of a callee's body is read and shown.
const maxBody = 64 << 10

// Config describes one demo app. The zero value of each optional field is documented.
type Config struct {
	// Listen is the host:port to serve on, e.g. 127.0.20.2:9080. Required.
	Listen string
	// Name is the service name shown in answers, e.g. "reviews". Required.
	Name string
	// Version is shown in answers, e.g. "v2". Empty means "v1".
	Version string
	// Calls are absolute http:// URLs called, in order, on every request.
	Calls []string
	// Proxy is the HTTP proxy URL calls go through. Empty means calls connect directly.
	Proxy string
	// FailRate is the fraction (0 to 1) of requests answered 500 on purpose.
	FailRate float64
	// Delay is added before every answer.
	Delay time.Duration
	// CallTimeout bounds each call. Zero means 10 s.
	CallTimeout time.Duration
	// WatchInterval, when set, makes requests with ?watch=true (or 1) Kubernetes-style
	// watches: the answer streams one JSON event per interval until the client leaves.
	WatchInterval time.Duration
	// HealthPath, when set, answers "success" (a probe target); see health.go.
	HealthPath string
	// FailMode (oom, refuse, hang) makes the app fail FailAfter after it starts.
	FailMode  string
	FailAfter time.Duration
}

// Validate reports the first problem with c, naming the flag it comes from.
func (c *Config) Validate() error {
	if c.Name == "" {
		return errors.New("--name is required")
	}
	if c.Listen == "" {
		return errors.New("--listen is required (host:port, e.g. 127.0.0.1:9080)")
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if host == "" {
		return fmt.Errorf("--listen %q: give an address, e.g. 127.0.0.1:%s", c.Listen, port)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("--listen %q: port must be a number from 1 to 65535", c.Listen)
	}
	for _, raw := range c.Calls {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("--call %q: %w", raw, err)
		}
		if u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--call %q: want an absolute http:// URL, e.g. http://reviews:9080/reviews", raw)
		}
	}
	if c.Proxy != "" {
		u, err := url.Parse(c.Proxy)
		if err != nil {
			return fmt.Errorf("--proxy %q: %w", c.Proxy, err)
		}
		if u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("--proxy %q: want http://host:port, e.g. http://127.0.10.2:15001", c.Proxy)
		}
	}
	if c.FailRate < 0 || c.FailRate > 1 {
		return fmt.Errorf("--fail-rate %v: must be between 0 and 1", c.FailRate)
	}
	if c.Delay < 0 {
		return fmt.Errorf("--delay %v: must not be negative", c.Delay)
	}
	if c.WatchInterval < 0 {
		return fmt.Errorf("--watch-interval %v: must not be negative", c.WatchInterval)
	}
	return c.validateHealth()
}

// Answer is the JSON body every request gets.
type Answer struct {
	Service string `json:"service"`
	Version string `json:"version"`
	Path    string `json:"path"`
	// RequestID is the request's x-request-id, as the sidecar set or passed it.
	RequestID string `json:"request_id,omitempty"`
	Calls     []Call `json:"calls,omitempty"`
	// Error is set when the app fails on purpose (--fail-rate).
	Error string `json:"error,omitempty"`
}

// Call is what one outgoing call returned.
type Call struct {
	URL    string `json:"url"`
	Status int    `json:"status,omitempty"`
	// LucidError is the callee's x-lucid-error header: why the mesh failed the call.
	LucidError string `json:"x_lucid_error,omitempty"`
	// Answer is the callee's body when it is JSON (another demo app's Answer).
	Answer json.RawMessage `json:"answer,omitempty"`
	// Body is the callee's body when it is not JSON (Envoy's "no healthy upstream", ...).
	Body string `json:"body,omitempty"`
	// Error is the transport error when no response came back.
	Error string `json:"error,omitempty"`
}

// App is a demo app's HTTP handler.
type App struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	health health
}

// New returns the app for a validated cfg.
func New(cfg Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Version == "" {
		cfg.Version = "v1"
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	if cfg.Proxy != "" {
		u, _ := url.Parse(cfg.Proxy) // validated above
		tr.Proxy = http.ProxyURL(u)
	}
	return &App{
		cfg:    cfg,
		client: &http.Client{Transport: tr, Timeout: cfg.CallTimeout},
		log:    log,
	}, nil
}

// ServeHTTP answers any method and path.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.observe(r) {
		a.serveHealth(w, r)
		return
	}
	if a.cfg.WatchInterval > 0 && isWatch(r) {
		a.watch(w, r)
		return
	}
	if a.cfg.Delay > 0 {
		t := time.NewTimer(a.cfg.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	ans := Answer{
		Service:   a.cfg.Name,
		Version:   a.cfg.Version,
		Path:      r.URL.Path,
		RequestID: r.Header.Get("x-request-id"),
	}
	status := http.StatusOK
	if a.cfg.FailRate > 0 && rand.Float64() < a.cfg.FailRate {
		status = http.StatusInternalServerError
		ans.Error = fmt.Sprintf("failing on purpose (--fail-rate %v)", a.cfg.FailRate)
	} else {
		for _, u := range a.cfg.Calls {
			ans.Calls = append(ans.Calls, a.call(r, u))
		}
	}
	body, err := json.MarshalIndent(ans, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if ans.RequestID != "" {
		w.Header().Set("x-request-id", ans.RequestID)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// call makes one outgoing call on behalf of in.
func (a *App) call(in *http.Request, target string) Call {
	c := Call{URL: target}
	req, err := http.NewRequestWithContext(in.Context(), http.MethodGet, target, nil)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	for _, h := range propagated {
		if v := in.Header.Values(h); len(v) > 0 {
			req.Header[http.CanonicalHeaderKey(h)] = v
		}
	}
	resp, err := a.client.Do(req)
	if err != nil {
		c.Error = err.Error()
		a.log.Warn("call failed", "url", target, "error", err)
		return c
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.Status = resp.StatusCode
	c.LucidError = resp.Header.Get("x-lucid-error")
	if err != nil {
		c.Error = "reading body: " + err.Error()
	}
	if json.Valid(data) && len(strings.TrimSpace(string(data))) > 0 {
		c.Answer = data
	} else {
		c.Body = strings.TrimSpace(string(data))
	}
	return c
}

// Run serves cfg until ctx is cancelled, then shuts down gracefully (up to 5 s).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	app, err := New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("demo-app: %w", err)
	}
	return app.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled. It closes ln.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	// Watches end when the app stops (BaseContext), so Shutdown does not wait for them.
	base, stop := context.WithCancel(context.Background())
	defer stop()
	context.AfterFunc(ctx, stop)
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // h2c, for HTTP2/GRPC service ports
	srv := &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
		Protocols:         protocols,
	}
	a.log.Info("demo-app serving", "service", a.cfg.Name, "version", a.cfg.Version,
		"listen", ln.Addr().String(), "calls", a.cfg.Calls, "proxy", a.cfg.Proxy)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer a.startFailing(func() { _ = srv.Close() })()
	select {
	case err := <-done:
		if a.cfg.FailMode == FailRefuse && a.health.failing.Load() {
			<-ctx.Done() // not listening any more, on purpose, but still running
			return nil
		}
		return fmt.Errorf("demo-app: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		a.log.Warn("demo-app: serve", "error", serveErr)
	}
	a.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("demo-app: shutdown: %w", err)
	}
	return nil
}
