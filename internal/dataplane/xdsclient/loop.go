package xdsclient

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// loop is what the sessions of both protocols share: a goroutine that only receives, the
// owner's loop that handles one response at a time, and NACKs of a response identical to
// the one rejected last, sent again only after a growing delay (so a server that resends on
// NACK causes no busy loop). Req and Resp are the protocol's request and response.
type loop[Req, Resp any] struct {
	c       *Client
	send    func(Req) error
	nackDue chan *typeState            // a delayed NACK is due
	timers  map[*typeState]*time.Timer // delayed NACK timers
	pending map[*typeState]Req         // delayed NACKs
}

func newLoop[Req, Resp any](c *Client, send func(Req) error) *loop[Req, Resp] {
	return &loop[Req, Resp]{c: c, send: send, nackDue: make(chan *typeState),
		timers: map[*typeState]*time.Timer{}, pending: map[*typeState]Req{}}
}

// run hands every response recv returns to handle, on the caller's goroutine, until ctx
// ends, recv fails (its error is returned wrapped with what) or handle fails.
func (l *loop[Req, Resp]) run(ctx context.Context, what string, recv func() (Resp, error), handle func(Resp) error) error {
	ctx, cancel := context.WithCancel(ctx)
	responses := make(chan Resp)
	recvErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			r, err := recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case responses <- r:
			case <-ctx.Done():
				return
			}
		}
	})
	defer func() {
		cancel()
		wg.Wait()
		for _, t := range l.timers {
			t.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return wrapf(what, err)
		case r := <-responses:
			if err := handle(r); err != nil {
				return err
			}
		case ts := <-l.nackDue:
			if req, ok := l.pending[ts]; ok {
				delete(l.pending, ts)
				if err := l.send(req); err != nil {
					return err
				}
			}
		}
	}
}

// received forgets a delayed NACK of ts: a newer response of the type arrived.
func (l *loop[Req, Resp]) received(ts *typeState) {
	if t := l.timers[ts]; t != nil {
		t.Stop()
		delete(l.timers, ts)
		delete(l.pending, ts)
	}
}

// nack records and sends the rejection req of a response of ts (key identifies its
// content): at once, or after a growing delay when it is the response rejected last.
func (l *loop[Req, Resp]) nack(ctx context.Context, ts *typeState, key [32]byte, version, msg string, now time.Time, req Req) error {
	c := l.c
	c.mu.Lock()
	ts.status.NackReason, ts.status.NackVersion, ts.status.UpdatedAt = msg, version, now
	c.mu.Unlock()
	if key != ts.nackKey {
		ts.nackKey, ts.nackDelay = key, 0
		c.log.Warn("xds update rejected", "type", ts.kind.short, "version", version, "reason", msg)
		return l.send(req)
	}
	ts.nackDelay = min(max(ts.nackDelay*2, 10*c.o.BackoffBase), c.o.BackoffMax)
	c.log.Debug("xds update rejected again", "type", ts.kind.short, "version", version, "delay", ts.nackDelay)
	l.pending[ts] = req
	done := ctx.Done()
	l.timers[ts] = time.AfterFunc(ts.nackDelay, func() {
		select {
		case l.nackDue <- ts:
		case <-done:
		}
	})
	return nil
}

func wrapf(what string, err error) error { return fmt.Errorf("%s: %w", what, err) }
