package dashboard

import (
	"net/http"
	"sync/atomic"
	"time"
)

// The dashboard reads the proxies only while someone looks at it. Scraping every proxy's
// metrics every Interval and holding an error tap open to each is cheap for a dozen proxies
// and a real cost for a thousand (a connection and a stream per proxy, a scrape per proxy
// every two seconds, all on the control plane's CPU), and the control plane's first job is
// configuration. So collection starts with the first request to the dashboard's pages or
// API, runs while a page is open (its event stream) and for Options.Idle after the last
// request, then stops and closes the taps. The tap relay used by `lucid tap` and
// `lucid top` reads a proxy directly and does not need it.

// demand tracks the dashboard's viewers.
type demand struct {
	open     atomic.Int32 // requests in progress (an open page holds its event stream)
	lastSeen atomic.Int64 // unix nanoseconds of the last request's start or end
	wake     chan struct{}
}

func newDemand() *demand { return &demand{wake: make(chan struct{}, 1)} }

// watch marks a request to the dashboard as a view for as long as it lasts, and wakes
// collection at once if it was idle.
func (d *Dashboard) watch(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dm := d.demand
		dm.open.Add(1)
		dm.lastSeen.Store(time.Now().UnixNano())
		select {
		case dm.wake <- struct{}{}:
		default:
		}
		defer func() {
			dm.lastSeen.Store(time.Now().UnixNano())
			dm.open.Add(-1)
		}()
		h.ServeHTTP(w, r)
	})
}

// watched reports whether the dashboard was looked at recently enough to keep collecting.
func (d *Dashboard) watched(now time.Time) bool {
	if d.o.Idle < 0 {
		return true
	}
	return d.demand.open.Load() > 0 || now.Sub(time.Unix(0, d.demand.lastSeen.Load())) < d.o.Idle
}
