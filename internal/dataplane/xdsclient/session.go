package xdsclient

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// session is one ADS stream. It runs on the goroutine that called Client.Run, which owns
// every typeState's stream fields; a second goroutine only receives.
type session struct {
	c           *Client
	conn        *grpc.ClientConn
	st          discoverypb.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	ctx         context.Context
	gotResponse bool
	sentNode    bool

	nackDue chan *typeState                              // a delayed NACK is due
	timers  map[*typeState]*time.Timer                   // delayed NACK timers
	pending map[*typeState]*discoverypb.DiscoveryRequest // delayed NACKs
}

func newSession(c *Client, conn *grpc.ClientConn) *session {
	return &session{
		c:       c,
		conn:    conn,
		nackDue: make(chan *typeState),
		timers:  map[*typeState]*time.Timer{},
		pending: map[*typeState]*discoverypb.DiscoveryRequest{},
	}
}

func (s *session) responded() bool { return s.gotResponse }

// run opens the stream, subscribes and handles responses until the stream or ctx ends.
func (s *session) run(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = sctx
	st, err := discoverypb.NewAggregatedDiscoveryServiceClient(s.conn).StreamAggregatedResources(sctx)
	if err != nil {
		return fmt.Errorf("open ads stream: %w", err)
	}
	s.st = st
	defer func() {
		for _, t := range s.timers {
			t.Stop()
		}
	}()
	for _, ts := range s.c.order {
		ts.nonce, ts.requested = "", false
	}
	// Subscribe: wildcard CDS and LDS, and the names already known (on reconnect), each
	// with the last accepted version so the server may skip what did not change.
	for _, ts := range s.c.order {
		if ts.kind.wildcard || len(ts.names) > 0 {
			if err := s.send(s.c.request(ts)); err != nil {
				return err
			}
			ts.requested = true
		}
	}
	s.c.setConnected(true)
	s.c.log.Info("xds stream connected", "server", s.c.o.Server)

	recv := make(chan *discoverypb.DiscoveryResponse)
	recvErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			r, err := st.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case recv <- r:
			case <-sctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			return fmt.Errorf("ads stream: %w", err)
		case r := <-recv:
			s.gotResponse = true
			if err := s.handle(r); err != nil {
				return err
			}
		case ts := <-s.nackDue:
			if req := s.pending[ts]; req != nil {
				delete(s.pending, ts)
				if err := s.send(req); err != nil {
					return err
				}
			}
		}
	}
}

func (s *session) send(req *discoverypb.DiscoveryRequest) error {
	if !s.sentNode {
		req.Node = s.c.node
		s.sentNode = true
	}
	if err := s.st.Send(req); err != nil {
		return fmt.Errorf("send %s request: %w", req.GetTypeUrl(), err)
	}
	return nil
}

// handle decodes, applies and ACKs or NACKs one response.
func (s *session) handle(r *discoverypb.DiscoveryResponse) error {
	c := s.c
	ts := c.types[r.GetTypeUrl()]
	if ts == nil || !ts.requested {
		c.log.Debug("ignoring xds response for a type not subscribed", "type", r.GetTypeUrl())
		return nil
	}
	ts.nonce = r.GetNonce()
	if t := s.timers[ts]; t != nil {
		t.Stop()
		delete(s.timers, ts)
		delete(s.pending, ts)
	}
	now := time.Now()
	cd, err := decodeResponse(ts, r, now)
	var follow *typeState // the type whose subscription follows this one (LDS→RDS, CDS→EDS)
	var followNames []string
	if err == nil {
		follow, followNames, err = c.accept(ts, cd, r.GetVersionInfo(), now)
	}
	if err != nil {
		return s.nack(ts, r, err, now)
	}
	ts.nackKey, ts.nackDelay = [32]byte{}, 0
	c.log.Info("xds update accepted", "type", ts.kind.short, "version", r.GetVersionInfo(), "resources", len(r.GetResources()))
	if err := s.send(c.request(ts)); err != nil {
		return err
	}
	if follow != nil {
		follow.setNames(followNames)
		if follow.requested || len(followNames) > 0 {
			if err := s.send(c.request(follow)); err != nil {
				return err
			}
			follow.requested = true
		}
	}
	return nil
}

// accept applies a decoded response of ts together with the subscription it implies for
// the type that follows it (listeners → route names, clusters → endpoint names: entries
// no longer named are dropped), and records it. It returns the follower and its new names
// when they changed, or the Applier's error (nothing is recorded then).
func (c *Client) accept(ts *typeState, cd *candidate, version string, now time.Time) (follow *typeState, followNames []string, err error) {
	cd.accept = true
	cands := map[*typeState]*candidate{ts: cd}
	switch ts.kind.url {
	case ListenerType:
		follow, followNames = c.types[RouteType], routeNames(cd.entries)
	case ClusterType:
		follow, followNames = c.types[EndpointType], edsNames(cd.entries)
	}
	if follow != nil {
		if slices.Equal(followNames, follow.names) {
			follow = nil
		} else {
			cands[follow] = &candidate{entries: prune(follow.entries, followNames), version: follow.status.Version}
		}
	}
	snap := c.buildSnapshot(cands)
	if c.o.Applier != nil {
		if err := c.o.Applier.Apply(snap); err != nil {
			return nil, nil, err
		}
	}
	c.last = snap
	c.mu.Lock()
	for t, cd := range cands {
		cd.commit(t)
	}
	ts.status = TypeStatus{Received: true, Version: version, UpdatedAt: now}
	c.mu.Unlock()
	return follow, followNames, nil
}

// nack rejects r. A response identical to the one NACKed last is NACKed again only after a
// growing delay, so a server that resends on NACK does not spin.
func (s *session) nack(ts *typeState, r *discoverypb.DiscoveryResponse, cause error, now time.Time) error {
	c := s.c
	msg := cause.Error()
	c.mu.Lock()
	ts.status.NackReason, ts.status.NackVersion, ts.status.UpdatedAt = msg, r.GetVersionInfo(), now
	c.mu.Unlock()
	req := c.request(ts)
	req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: msg}

	key := responseKey(r)
	if key != ts.nackKey {
		ts.nackKey, ts.nackDelay = key, 0
		c.log.Warn("xds update rejected", "type", ts.kind.short, "version", r.GetVersionInfo(), "reason", msg)
		return s.send(req)
	}
	if ts.nackDelay == 0 {
		ts.nackDelay = 10 * c.o.BackoffBase
	} else {
		ts.nackDelay *= 2
	}
	ts.nackDelay = min(ts.nackDelay, c.o.BackoffMax)
	c.log.Debug("xds update rejected again", "type", ts.kind.short, "version", r.GetVersionInfo(), "delay", ts.nackDelay)
	s.pending[ts] = req
	done := s.ctx.Done()
	s.timers[ts] = time.AfterFunc(ts.nackDelay, func() {
		select {
		case s.nackDue <- ts:
		case <-done:
		}
	})
	return nil
}
