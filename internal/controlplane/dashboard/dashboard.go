// Package dashboard is the control plane's web view of the mesh, served on the debug
// port (`lucid dashboard` prints its address): a live topology of workloads, gateways,
// services and external hosts with each edge's rate, success rate, p99 and the cause of
// its errors; a page per workload (golden signals, live requests, configuration, sync
// status, readiness); and the analyzers' findings. It also relays a proxy's tap
// (/debug/tap) so `lucid tap` and `lucid top` need only the control plane's address.
//
// It sits beside the flow and reads the data plane only over the network, as an
// operator's tool would: the proxies the ADS server knows (node ids and metadata give
// their addresses), each proxy's own metrics (admin /stats/prometheus, scraped every
// Interval; no Prometheus needed) and each proxy's tap of failed requests (for the
// causes). Browsers get updates as server-sent events; every asset is embedded.
//
//	ads.SyncStatus ─► proxies ─► scrape /stats/prometheus ─► rounds ─► graph ─► SSE ─► browser
//	                         └─► /tap?errors=true ─► causes ──────────┘
package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// Options configure the dashboard.
type Options struct {
	// Proxies lists the proxies the control plane knows (ads.Server.SyncStatus).
	Proxies func() []contract.ProxyStatus
	// Findings returns the analyzers' messages for the configuration in force (a JSON
	// array); nil, or an error, shows none.
	Findings func() (any, error)
	// AdminPort and StatusPort are the proxies' admin API (15000) and status (15020) ports.
	AdminPort, StatusPort int
	// Interval is how often every proxy's metrics are read (default 2 s).
	Interval time.Duration
	// Window is the span an edge's rate, success rate and p99 cover (default 1 min).
	Window time.Duration
	// History is how long workload time series go back (default 5 min).
	History time.Duration
	// Idle is how long the proxies are still read after the dashboard's last viewer left
	// (default 5 min; negative: always, demand.go).
	Idle time.Duration
	// Client reads the proxies (default: a client with a 2 s timeout for metrics and
	// configuration; streams have no timeout).
	Client *http.Client
	Log    *slog.Logger
}

// Dashboard collects the mesh's state and serves it. Create it with New, serve
// Handler, and call Run to collect.
type Dashboard struct {
	o      Options
	stream *http.Client    // for taps: no timeout
	own    *http.Transport // the connections to the proxies, closed when Run returns; nil with Options.Client

	mu      sync.Mutex
	rounds  []round           // oldest first, within History
	causes  map[string]*cause // causes.go
	graph   []byte            // the newest graph JSON
	changed chan struct{}     // closed (and replaced) when graph changes

	stopped chan struct{} // closed when Run returns: open streams end
	demand  *demand       // who is looking (demand.go)
}

// maxScrapes bounds the proxies read at once.
const maxScrapes = 16

// round is one pass over every proxy's metrics.
type round struct {
	At      time.Time
	Scrapes map[string]*scrape // by proxy name; a proxy that could not be read is absent
}

// New returns a dashboard; nothing runs until Run.
func New(o Options) *Dashboard {
	if o.AdminPort == 0 {
		o.AdminPort = 15000
	}
	if o.StatusPort == 0 {
		o.StatusPort = 15020
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Idle == 0 {
		o.Idle = 5 * time.Minute
	}
	if o.History < o.Window {
		o.History = max(5*time.Minute, o.Window)
	}
	var own *http.Transport
	if o.Client == nil {
		own = &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}
		o.Client = &http.Client{Timeout: 2 * time.Second, Transport: own}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{o: o, own: own, stream: &http.Client{Transport: o.Client.Transport}, causes: map[string]*cause{}, changed: make(chan struct{}), stopped: make(chan struct{}), demand: newDemand()}
	d.graph = d.buildGraph(time.Now())
	return d
}

// Run collects every Interval until ctx ends, and keeps one error tap open per
// connected proxy, while the dashboard is watched (demand.go). It returns once everything
// it started has stopped.
func (d *Dashboard) Run(ctx context.Context) {
	defer close(d.stopped)
	if d.own != nil {
		defer d.own.CloseIdleConnections()
	}
	var wg sync.WaitGroup
	taps := map[string]context.CancelFunc{} // by proxy name → its error tap
	defer func() {
		for _, stop := range taps {
			stop()
		}
		wg.Wait()
	}()
	t := time.NewTicker(d.o.Interval)
	defer t.Stop()
	for {
		if !d.watched(time.Now()) {
			for name, stop := range taps {
				stop()
				delete(taps, name)
			}
			select {
			case <-ctx.Done():
				return
			case <-d.demand.wake:
				continue
			}
		}
		ps := d.proxies()
		for name, p := range ps {
			if _, ok := taps[name]; ok || !p.Connected {
				continue
			}
			tctx, stop := context.WithCancel(ctx)
			taps[name] = stop
			wg.Go(func() { d.errorTap(tctx, p) })
		}
		for name, stop := range taps {
			if p, ok := ps[name]; !ok || !p.Connected {
				stop()
				delete(taps, name)
			}
		}
		d.collect(ctx, ps)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collect scrapes every connected proxy at once and publishes the new graph.
func (d *Dashboard) collect(ctx context.Context, ps map[string]proxy) {
	r := round{At: time.Now(), Scrapes: map[string]*scrape{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, maxScrapes)
	for name, p := range ps {
		if !p.Connected {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			s, err := d.scrape(ctx, p)
			if err != nil {
				d.o.Log.Debug("dashboard: metrics not read", "proxy", name, "error", err)
				return
			}
			mu.Lock()
			r.Scrapes[name] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	d.mu.Lock()
	d.rounds = append(d.rounds, r)
	for len(d.rounds) > 1 && r.At.Sub(d.rounds[0].At) > d.o.History {
		d.rounds = d.rounds[1:]
	}
	d.mu.Unlock()
	g := d.buildGraph(r.At)
	d.mu.Lock()
	d.graph = g
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *Dashboard) scrape(ctx context.Context, p proxy) (*scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.adminAddr(p)+"/stats/prometheus", nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{resp.Status}
	}
	return parseMetrics(resp.Body)
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "answered " + e.status }

// current returns the newest graph and a channel closed when it is replaced.
func (d *Dashboard) current() ([]byte, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.graph, d.changed
}
