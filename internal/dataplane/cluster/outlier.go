package cluster

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Outlier detection (Envoy's consecutive-error detectors; success-rate detection is not
// implemented, and Istio turns it off anyway).
//
// forward reports each attempt's outcome (ReportStatus, ReportLocalFailure); a host whose
// consecutive failures reach a threshold is ejected at once, unless that would eject more
// than max_ejection_percent of the cluster's hosts (Envoy's rule: (ejected+1)/hosts, so with
// the default 10 % a cluster needs ten hosts before one can be ejected). An ejected host is
// left out of Pick for base_ejection_time × (times ejected), at most max_ejection_time, and
// comes back at the detector's next interval tick after that, as in Envoy, whose detector
// readmits hosts only when its interval timer fires (ticks every interval from the
// detector's creation; computed, not timed, so no goroutine runs). Its count of ejections
// decays by one per interval it stays in.
//
// Success-rate and failure-percentage detection are not implemented: Istio's
// DestinationRule cannot configure them (it sets only consecutive errors, interval,
// baseEjectionTime, maxEjectionPercent and minHealthPercent), and Envoy's defaults for them
// need 100 requests per host per interval and 5 hosts.
// The state lives with the host (it survives config updates while the host stays).

// OutcomeKind says what an attempt's outcome was, for outlier detection.
type OutcomeKind int

// Local-origin outcomes (no HTTP response from the upstream).
const (
	LocalConnectFailed OutcomeKind = iota // connect failure, reset, or no response
	LocalTimeout                          // the per-try or route timeout fired
	LocalSuccess                          // the connection worked (split mode only counts it)
)

// hostOutlier is one host's outlier state, shared by every incarnation of the host.
type hostOutlier struct {
	ejectedUntil atomic.Int64 // unix nanos; 0 when not ejected

	mu           sync.Mutex // guards the fields below
	consec5xx    uint32
	consecGw     uint32
	consecLocal  uint32
	ejections    uint32    // the ejection time multiplier
	lastUneject  time.Time // when the last ejection ended (for the multiplier's decay)
	lastEjectWhy string
}

// detector is a cluster's outlier detector, shared across updates of the cluster name.
type detector struct {
	// until is the latest end of any current ejection (unix nanos), 0 when none: while it
	// is in the future Pick leaves ejected hosts out; afterwards Pick takes the fast path.
	until atomic.Int64
	now   func() time.Time
	start time.Time // the interval timer's first arming: ticks are start + k × interval
}

// nextTick is the first interval tick at or after t (t itself without an interval).
func (d *detector) nextTick(t time.Time, interval time.Duration) time.Time {
	if interval <= 0 || d.start.IsZero() || t.Before(d.start) {
		return t
	}
	k := (t.Sub(d.start) + interval - 1) / interval
	return d.start.Add(k * interval)
}

// Ejected says whether outlier detection has ejected the host now (admin /clusters shows
// it as /failed_outlier_check).
func (h *Host) Ejected() bool {
	return h.od != nil && h.od.ejectedNow(time.Now().UnixNano())
}

func (o *hostOutlier) ejectedNow(now int64) bool {
	u := o.ejectedUntil.Load()
	return u != 0 && now < u
}

// ReportStatus reports an HTTP status the host answered (Envoy's putHttpResponseCode).
func (c *Cluster) ReportStatus(h *Host, code int) {
	od := c.cfg.OutlierDetection
	if od == nil || h.od == nil {
		return
	}
	c.record(h, od, code, false)
}

// ReportLocalFailure reports an attempt on h that ended without a response (connect
// failure, reset, timeout): with split_external_local_origin_errors it counts as a local
// origin failure, else as a 503 (504 for a timeout), as Envoy maps it.
func (c *Cluster) ReportLocalFailure(h *Host, kind OutcomeKind) {
	od := c.cfg.OutlierDetection
	if od == nil || h.od == nil {
		return
	}
	if !od.SplitExternalLocalOriginErrors {
		code := 503
		if kind == LocalTimeout {
			code = 504
		}
		c.record(h, od, code, false)
		return
	}
	c.record(h, od, 0, true)
}

// record counts one outcome and ejects the host when a threshold is reached.
func (c *Cluster) record(h *Host, od *resource.OutlierDetection, code int, local bool) {
	o := h.od
	o.mu.Lock()
	var why string
	var enforce uint32
	switch {
	case local:
		o.consecLocal++
		if od.ConsecutiveLocalOriginFailure > 0 && o.consecLocal >= od.ConsecutiveLocalOriginFailure {
			why, enforce = "consecutive_local_origin_failure", od.EnforcingConsecutiveLocalOriginFailure
			c.stats.OutlierDetectedLocalOrigin.Add(1)
		}
	case code >= 500:
		if code == 502 || code == 503 || code == 504 {
			o.consecGw++
			if od.ConsecutiveGatewayFailure > 0 && o.consecGw >= od.ConsecutiveGatewayFailure {
				c.stats.OutlierDetectedGateway.Add(1)
				if od.EnforcingConsecutiveGatewayFailure > 0 {
					why, enforce = "consecutive_gateway_failure", od.EnforcingConsecutiveGatewayFailure
				}
			}
		} else {
			o.consecGw = 0
		}
		o.consec5xx++
		if why == "" && od.Consecutive5xx > 0 && o.consec5xx >= od.Consecutive5xx {
			why, enforce = "consecutive_5xx", od.EnforcingConsecutive5xx
			c.stats.OutlierDetected5xx.Add(1)
		}
	default:
		o.consec5xx, o.consecGw = 0, 0
		if !od.SplitExternalLocalOriginErrors {
			o.consecLocal = 0
		}
	}
	if why == "" {
		o.mu.Unlock()
		return
	}
	// A detection resets the counters, ejected or not (Envoy resets them on ejection; a
	// host that was not ejected starts counting again).
	o.consec5xx, o.consecGw, o.consecLocal = 0, 0, 0
	if enforce < 100 && (enforce == 0 || rand.Uint32N(100) >= enforce) {
		o.mu.Unlock()
		return
	}
	c.eject(h, od, why)
	o.mu.Unlock()
}

// eject takes h out of load balancing. Called with h.od.mu held.
func (c *Cluster) eject(h *Host, od *resource.OutlierDetection, why string) {
	o := h.od
	now := c.det.now()
	if o.ejectedNow(now.UnixNano()) {
		return
	}
	o.ejectedUntil.Store(0) // a past ejection has ended
	total := len(c.hosts)
	if total == 0 {
		return
	}
	var active int64
	for _, o := range c.hosts {
		if o.od != nil && o.od.ejectedNow(now.UnixNano()) {
			active++
		}
	}
	if float64(100*(active+1))/float64(total) > float64(od.MaxEjectionPercent) {
		c.stats.OutlierEjectionsOverflow.Add(1)
		c.m.log.Debug("outlier detected, not ejected: max_ejection_percent reached", "cluster", c.cfg.Name,
			"host", h.Addr, "reason", why, "ejected", active, "hosts", total, "max_ejection_percent", od.MaxEjectionPercent)
		return
	}
	// The multiplier decays by one for each interval the host stayed in since its last
	// ejection ended.
	if od.Interval > 0 && !o.lastUneject.IsZero() && o.ejections > 0 {
		decay := uint32(now.Sub(o.lastUneject) / od.Interval)
		o.ejections -= min(decay, o.ejections)
	}
	o.ejections++
	d := od.BaseEjectionTime * time.Duration(o.ejections)
	if maxT := max(od.MaxEjectionTime, od.BaseEjectionTime); d > maxT {
		d = maxT
	}
	until := c.det.nextTick(now.Add(d), od.Interval)
	o.ejectedUntil.Store(until.UnixNano())
	o.lastUneject = until
	o.lastEjectWhy = why + " (" + strconv.FormatUint(uint64(o.ejections), 10) + " times, for " + d.String() + ")"
	for {
		u := c.det.until.Load()
		if u >= until.UnixNano() || c.det.until.CompareAndSwap(u, until.UnixNano()) {
			break
		}
	}
	c.stats.OutlierEjectionsEnforced.Add(1)
	c.m.log.Info("host ejected by outlier detection", "cluster", c.cfg.Name, "host", h.Addr,
		"reason", why, "for", d.String(), "times", o.ejections)
	// Long-lived streams pinned to the host move too, unless it is readmitted first.
	c.m.DrainHost(c.cfg.Name, h, "endpoint "+h.Addr+" was ejected by outlier detection: "+why)
}

// ejectedHosts returns the usable hosts ejected now (nil when none), readmitting hosts
// whose ejection time has passed.
func (c *Cluster) ejectedHosts() []*Host {
	if c.det == nil {
		return nil
	}
	u := c.det.until.Load()
	if u == 0 {
		return nil
	}
	now := c.det.now().UnixNano()
	var out []*Host
	for _, h := range c.usable {
		e := h.od.ejectedUntil.Load()
		switch {
		case e == 0:
		case now < e:
			out = append(out, h)
		case h.od.ejectedUntil.CompareAndSwap(e, 0):
			c.m.log.Info("host readmitted after outlier ejection", "cluster", c.cfg.Name, "host", h.Addr)
		}
	}
	if now >= u {
		c.det.until.CompareAndSwap(u, 0)
	}
	return out
}

// ejectionReason is why the host was last ejected ("" when never).
func (h *Host) ejectionReason() string {
	if h.od == nil {
		return ""
	}
	h.od.mu.Lock()
	defer h.od.mu.Unlock()
	return h.od.lastEjectWhy
}

// explainAllEjected says that outlier detection ejected every usable host.
func (c *Cluster) explainAllEjected(ejected []*Host) string {
	var b strings.Builder
	if len(ejected) == 1 {
		fmt.Fprintf(&b, "the only endpoint of cluster %s (%s) is ejected by outlier detection", c.cfg.Name, ejected[0].Addr)
	} else {
		fmt.Fprintf(&b, "all %d endpoints of cluster %s are ejected by outlier detection", len(ejected), c.cfg.Name)
	}
	if why := ejected[0].ejectionReason(); why != "" {
		fmt.Fprintf(&b, " (%s: %s)", ejected[0].Addr, why)
	}
	b.WriteString("; the panic threshold (DestinationRule outlierDetection.minHealthPercent) is ")
	t := c.cfg.HealthyPanicThreshold
	if t < 0 {
		t = 50
	}
	if t == 0 {
		b.WriteString("0, so no ejected host is used")
	} else {
		fmt.Fprintf(&b, "%g%%", t)
	}
	return b.String()
}
