// Package tap streams a proxy's finished requests to whoever listens: `lucid tap` and
// `lucid top` through the admin API's /tap (relayed by the control plane), and the
// dashboard's live views. It sits at the end of the request path beside the access log
// and the stats: forward hands each finished streaminfo.Info to Hub.Observe.
//
// A tap never slows a request down. With nobody listening Observe is one atomic load.
// A listener's filter is checked in place; a matching request past the listener's rate
// (events per second, chosen by the listener and capped here) or arriving while the
// listener's buffer is full is dropped and counted, never waited for.
package tap

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

// Buffer is how many events a listener may have waiting before new ones are dropped.
const Buffer = 256

// ErrClosed is returned by Subscribe once the hub is closed (the proxy is stopping).
var ErrClosed = errors.New("tap: the proxy is shutting down")

// Hub fans finished requests out to the current listeners. The zero value is not usable;
// call New.
type Hub struct {
	proxy string           // <workload>.<namespace>, reported in every event
	now   func() time.Time // the rate limit's clock (tests replace it)

	// subs is the current listeners, replaced (copy on write) under mu; nil when none, so
	// Observe's fast path is a single atomic load.
	subs   atomic.Pointer[[]*Subscription]
	mu     sync.Mutex // serialises Subscribe, Subscription.Close and Close
	closed bool
}

// New returns the hub of the proxy named proxy (<workload>.<namespace>).
func New(proxy string) *Hub { return &Hub{proxy: proxy, now: time.Now} }

// Subscription is one listener. Read Events until Done is closed; call Close when done.
type Subscription struct {
	h      *Hub
	filter Filter
	events chan contract.TapEvent
	done   chan struct{}
	once   sync.Once

	// Rate limit: a fixed one-second window (unix second, events admitted in it).
	window  atomic.Int64
	inWin   atomic.Int64
	dropped atomic.Uint64
}

// Subscribe adds a listener with filter f.
func (h *Hub) Subscribe(f Filter) (*Subscription, error) {
	f.defaults()
	s := &Subscription{h: h, filter: f, events: make(chan contract.TapEvent, Buffer), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	var next []*Subscription
	if cur := h.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	h.subs.Store(&next)
	return s, nil
}

// Listeners is the number of current listeners.
func (h *Hub) Listeners() int {
	if cur := h.subs.Load(); cur != nil {
		return len(*cur)
	}
	return 0
}

// Close ends every listener (their Done channels close) and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	cur := h.subs.Swap(nil)
	h.mu.Unlock()
	if cur != nil {
		for _, s := range *cur {
			s.once.Do(func() { close(s.done) })
		}
	}
}

// Events delivers the matching requests. It is never closed: stop reading when Done is.
func (s *Subscription) Events() <-chan contract.TapEvent { return s.events }

// Done is closed when the subscription ends (Close, or the hub closed).
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Dropped is how many matching requests were not delivered (rate limit or full buffer).
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close removes the listener. Safe to call more than once.
func (s *Subscription) Close() {
	h := s.h
	h.mu.Lock()
	if cur := h.subs.Load(); cur != nil {
		next := make([]*Subscription, 0, len(*cur))
		for _, x := range *cur {
			if x != s {
				next = append(next, x)
			}
		}
		if len(next) == 0 {
			h.subs.Store(nil)
		} else {
			h.subs.Store(&next)
		}
	}
	h.mu.Unlock()
	s.once.Do(func() { close(s.done) })
}

// Observe offers one finished request to every listener. It never blocks. It has the
// signature of forward's observers and must not keep info.
func (h *Hub) Observe(info *streaminfo.Info) {
	cur := h.subs.Load()
	if cur == nil {
		return
	}
	var (
		ev    contract.TapEvent // built once, for the first listener that takes it
		built bool
		now   int64
	)
	for _, s := range *cur {
		if !s.filter.Match(info) {
			continue
		}
		if now == 0 {
			now = h.now().Unix()
		}
		if !s.admit(now) {
			s.dropped.Add(1)
			continue
		}
		if !built {
			ev, built = h.event(info), true
		}
		select {
		case s.events <- ev:
		default:
			s.dropped.Add(1)
		}
	}
}

// admit applies the listener's rate: at most filter.RPS events in each second.
func (s *Subscription) admit(sec int64) bool {
	if w := s.window.Load(); w != sec && s.window.CompareAndSwap(w, sec) {
		s.inWin.Store(0)
	}
	return s.inWin.Add(1) <= int64(s.filter.RPS)
}

func (h *Hub) event(in *streaminfo.Info) contract.TapEvent {
	return contract.TapEvent{
		Time:               in.Start,
		Proxy:              h.proxy,
		Direction:          in.Direction,
		Protocol:           in.Protocol,
		Method:             in.Method,
		Authority:          in.Authority,
		Path:               in.Path,
		Status:             in.ResponseCode,
		Flags:              in.Flags.String(),
		DurationMS:         float64(in.Duration.Microseconds()) / 1000,
		UpstreamHost:       in.UpstreamHost,
		UpstreamCluster:    in.UpstreamCluster,
		Route:              in.RouteName,
		Source:             in.Source.Workload,
		Destination:        in.Destination.Workload,
		DestinationService: in.DestinationService,
		RequestID:          in.RequestID,
		Error:              in.LucidError,
	}
}
