package xdsclient

import (
	"context"
	"fmt"
	"slices"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// session is one state-of-the-world ADS stream. It runs on the goroutine that called
// Client.Run, which owns every typeState's stream fields; a second goroutine only receives
// (loop.go).
type session struct {
	*loop[*discoverypb.DiscoveryRequest, *discoverypb.DiscoveryResponse]
	conn        *grpc.ClientConn
	st          discoverypb.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	ctx         context.Context
	gotResponse bool
	sentNode    bool
}

func newSession(c *Client, conn *grpc.ClientConn) *session {
	s := &session{conn: conn}
	s.loop = newLoop[*discoverypb.DiscoveryRequest, *discoverypb.DiscoveryResponse](c, s.sendRequest)
	return s
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
	return s.loop.run(sctx, "ads stream", st.Recv, func(r *discoverypb.DiscoveryResponse) error {
		s.gotResponse = true
		return s.handle(r)
	})
}

func (s *session) sendRequest(req *discoverypb.DiscoveryRequest) error {
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
	s.received(ts)
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
	if ts.kind.url == ndsKind.url {
		return nil, nil, c.acceptNameTable(ts, cd, version, now) // decode_nds.go
	}
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

// nack rejects r (repeated identical rejections are spaced: loop.nack).
func (s *session) nack(ts *typeState, r *discoverypb.DiscoveryResponse, cause error, now time.Time) error {
	req := s.c.request(ts)
	req.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: cause.Error()}
	return s.loop.nack(s.ctx, ts, responseKey(r), r.GetVersionInfo(), cause.Error(), now, req)
}
