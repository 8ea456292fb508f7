package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// cause is the newest explained failure on one edge, from a proxy's tap.
type cause struct {
	At     time.Time
	Flags  string // response flags ("UH"), "-" for none
	Status int
	Text   string // Lucid's explanation (x-lucid-error); "" when the proxy gave none
	Subset string // the subset of the upstream cluster (outbound|9080|v3|reviews...)
}

// causeKeys: the caller's side of an edge ("out|<from node>|<service host>") and the
// destination's side ("in|<to node>").
func outKey(from, host string) string { return "out|" + from + "|" + host }
func inKey(to string) string          { return "in|" + to }

// errorTap keeps a tap of failed requests open on one proxy (reconnecting every second
// while it fails) and records their causes. It returns when ctx ends.
func (d *Dashboard) errorTap(ctx context.Context, p proxy) {
	q := url.Values{"errors": {"true"}, "rps": {"20"}}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := d.tap(ctx, p, q, func(ev contract.TapEvent) error {
			d.record(p, ev)
			return nil
		})
		if ctx.Err() == nil {
			d.o.Log.Debug("dashboard: error tap ended", "proxy", p.Name, "error", err)
		}
		t.Reset(time.Second)
	}
}

// tap opens a proxy's /tap with query q and calls each for every event until the stream
// ends, ctx ends or each returns an error.
func (d *Dashboard) tap(ctx context.Context, p proxy, q url.Values, each func(contract.TapEvent) error) error {
	body, err := d.openTap(ctx, p, q)
	if err != nil {
		return err
	}
	defer body.Close()
	return readTap(body, p, each)
}

// readTap decodes a tap stream, one JSON event per line.
func readTap(body io.Reader, p proxy, each func(contract.TapEvent) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev contract.TapEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("tap of %s: %w", p.Name, err)
		}
		if err := each(ev); err != nil {
			return err
		}
	}
	return sc.Err()
}

// tapError is a proxy's refusal of a tap (a bad filter): its status and text.
type tapError struct {
	Code int
	Text string
}

func (e *tapError) Error() string { return strings.TrimSpace(e.Text) }

func (d *Dashboard) openTap(ctx context.Context, p proxy, q url.Values) (io.ReadCloser, error) {
	u := "http://" + d.adminAddr(p) + contract.TapPath + "?" + q.Encode()
	// The address is a proxy's, from the control plane's own list (node id and metadata of
	// a connected proxy), not from the request.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.stream.Do(req)
	if err != nil {
		return nil, fmt.Errorf("tap of %s at %s: %w", p.Name, d.adminAddr(p), err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &tapError{Code: resp.StatusCode, Text: string(b)}
	}
	return resp.Body, nil
}

func (d *Dashboard) record(p proxy, ev contract.TapEvent) {
	c := &cause{At: ev.Time, Flags: ev.Flags, Status: ev.Status, Text: ev.Error, Subset: subsetOf(ev.UpstreamCluster)}
	if c.At.IsZero() {
		c.At = time.Now()
	}
	var key string
	if ev.Direction == "outbound" {
		host := ev.DestinationService
		if host == "" {
			host = hostOf(ev.Authority)
		}
		key = outKey(workloadNode(p.Workload, p.Namespace), host)
	} else {
		key = inKey(workloadNode(p.Workload, p.Namespace))
	}
	d.mu.Lock()
	d.causes[key] = c
	d.mu.Unlock()
}

// subsetOf reads the subset of an Istio cluster name: outbound|9080|v3|reviews.default.svc.cluster.local.
func subsetOf(cluster string) string {
	parts := strings.Split(cluster, "|")
	if len(parts) == 4 {
		return parts[2]
	}
	return ""
}

func hostOf(authority string) string {
	if h, _, err := net.SplitHostPort(authority); err == nil {
		return h
	}
	return authority
}

// flagMeaning is the short explanation shown on an edge for a response flag.
var flagMeaning = map[string]string{
	"UH":   "no healthy upstream",
	"UF":   "upstream connection failure",
	"UC":   "upstream closed the connection",
	"UO":   "circuit breaker overflow",
	"NR":   "no route",
	"NC":   "no cluster",
	"URX":  "retries exhausted",
	"UT":   "upstream timeout",
	"UR":   "upstream reset",
	"DC":   "client went away",
	"LR":   "local reset",
	"RL":   "rate limited",
	"FI":   "fault injected",
	"UAEX": "denied by external authorization",
	"DPE":  "downstream protocol error",
	"UPE":  "upstream protocol error",
}

// summary is the short cause shown on an edge: "UH: empty subset v3",
// "NR: no route", "RBAC: denied", "5xx from the app".
func (c *cause) summary() string {
	flag, _, _ := strings.Cut(c.Flags, ",")
	low := strings.ToLower(c.Text)
	switch {
	case strings.Contains(low, "rbac"):
		return "RBAC: denied"
	case flag == "UH" && c.Subset != "" && strings.Contains(low, "subset"):
		return "UH: empty subset " + c.Subset
	case flag != "" && flag != "-":
		if m, ok := flagMeaning[flag]; ok {
			return flag + ": " + m
		}
		return flag
	case c.Status >= 500:
		return fmt.Sprintf("%d from the app", c.Status)
	case c.Status == 0:
		return "no response"
	}
	return fmt.Sprint(c.Status)
}
