package dashboard

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Workload is a workload page's data (/dashboard/api/workload?name=<workload>.<namespace>).
type Workload struct {
	Name      string            `json:"name"`
	Kind      string            `json:"kind"` // workload or gateway
	NodeID    string            `json:"node_id"`
	IP        string            `json:"ip"`
	Admin     string            `json:"admin"`
	Labels    map[string]string `json:"labels"`
	Connected bool              `json:"connected"`
	// Sync is the xDS sync state per type (LDS, RDS, CDS, EDS), as proxy-status shows it.
	Sync map[string]SyncState `json:"sync"`
	// Series are the golden signals, one point per collection, oldest first.
	Series []Point `json:"series"`
	// Ready is the status port's /healthz/ready answer; Probes the app probes' results.
	Ready       string  `json:"ready"`
	ReadyOK     bool    `json:"ready_ok"`
	Probes      []Probe `json:"probes"`
	Certificate string  `json:"certificate"`
	Config      *Config `json:"config,omitempty"`
	ConfigError string  `json:"config_error,omitempty"`
}

// SyncState is one type's sync state.
type SyncState struct {
	State      string `json:"state"`
	Version    string `json:"version,omitempty"`
	NackReason string `json:"nack_reason,omitempty"`
}

// Point is the golden signals over one collection interval.
type Point struct {
	Time   time.Time          `json:"t"`
	InRPS  float64            `json:"in_rps"`  // requests the workload served
	OutRPS float64            `json:"out_rps"` // requests it sent
	Errors map[string]float64 `json:"errors"`  // failed requests per second by response flag ("5xx" without one)
	P50    *float64           `json:"p50"`
	P90    *float64           `json:"p90"`
	P99    *float64           `json:"p99"`
}

// Probe is one app probe's outcome count (lucid_app_probe_total).
type Probe struct {
	Probe  string  `json:"probe"`
	Result string  `json:"result"`
	Reason string  `json:"reason,omitempty"`
	Count  float64 `json:"count"`
}

// series computes a workload's golden signals from the rounds.
func (d *Dashboard) series(node string) []Point {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []Point{}
	for i := 1; i < len(d.rounds); i++ {
		prev, cur := d.rounds[i-1], d.rounds[i]
		secs := cur.At.Sub(prev.At).Seconds()
		if secs <= 0 {
			continue
		}
		var in, served, outb counts
		var bounds []float64
		for name, s := range cur.Scrapes {
			old := prev.Scrapes[name]
			if old == nil {
				continue
			}
			if bounds == nil {
				bounds = s.Bounds
			}
			for k, c := range s.Edges {
				if k.To != node && k.From != node {
					continue
				}
				dc := delta(c, old.Edges[k], len(s.Bounds))
				switch {
				case k.From == servedKey:
					served.add(dc)
				case k.To == node:
					in.add(dc)
				default:
					outb.add(dc)
				}
			}
		}
		if served.Requests > 0 || in.Requests == 0 {
			in = served // the workload's own proxy counts what it served; callers' reports are the fallback
		}
		p := Point{Time: cur.At, InRPS: in.Requests / secs, OutRPS: outb.Requests / secs, Errors: map[string]float64{}}
		for _, c := range []counts{in, outb} {
			flagged := 0.0
			for f, v := range c.Flags {
				p.Errors[f] += v / secs
				flagged += v
			}
			if rest := c.Errors - flagged; rest > 0 {
				p.Errors["5xx"] += rest / secs
			}
		}
		lat := in
		if lat.Requests == 0 {
			lat = outb
		}
		p.P50, p.P90, p.P99 = q(0.5, bounds, lat), q(0.9, bounds, lat), q(0.99, bounds, lat)
		out = append(out, p)
	}
	return out
}

func q(x float64, bounds []float64, c counts) *float64 {
	v := quantile(x, bounds, c.Buckets, c.Requests)
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// workload gathers a workload page: what the control plane knows, then what the proxy
// says (configuration, readiness, probes), read in parallel.
func (d *Dashboard) workload(ctx context.Context, p proxy) Workload {
	w := Workload{
		Name: p.Name, Kind: kindWorkload, NodeID: p.ID, IP: p.IP, Admin: d.adminAddr(p), Labels: p.Labels, Connected: p.Connected,
		Sync:        map[string]SyncState{},
		Series:      d.series(workloadNode(p.Workload, p.Namespace)),
		Probes:      []Probe{},
		Certificate: "none: mTLS is not enabled in this mesh, the proxy holds no workload certificate",
	}
	if p.Gateway {
		w.Kind = kindGateway
	}
	for t, s := range p.Status.Types {
		w.Sync[t] = SyncState{State: s.State, Version: s.AckedVersion, NackReason: s.NackReason}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		cfg, err := d.config(ctx, p)
		if err != nil {
			w.ConfigError = err.Error()
			return
		}
		w.Config = cfg
	})
	wg.Go(func() {
		code, body, err := d.get(ctx, d.statusAddr(p), "/healthz/ready")
		switch {
		case err != nil:
			w.Ready = err.Error()
		case code == http.StatusOK:
			w.Ready, w.ReadyOK = "ready", true
		default:
			w.Ready = fmt.Sprintf("not ready (%d): %s", code, strings.TrimSpace(string(body)))
		}
	})
	wg.Go(func() {
		code, body, err := d.get(ctx, d.statusAddr(p), "/stats/prometheus")
		if err == nil && code == http.StatusOK {
			w.Probes = parseProbes(body)
		}
	})
	wg.Wait()
	return w
}

func (d *Dashboard) get(ctx context.Context, addr, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := d.o.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	return resp.StatusCode, b, err
}

// parseProbes reads lucid_app_probe_total from the status port's merged metrics.
func parseProbes(b []byte) []Probe {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	out := []Probe{}
	if err != nil {
		return out
	}
	for _, m := range fams["lucid_app_probe_total"].GetMetric() {
		l := labels(m)
		out = append(out, Probe{Probe: strings.TrimSpace(l["container"] + " " + l["probe"]), Result: l["result"], Reason: l["reason"], Count: m.GetCounter().GetValue()})
	}
	slices.SortFunc(out, func(a, b Probe) int { return strings.Compare(a.Probe+a.Result, b.Probe+b.Result) })
	return out
}
