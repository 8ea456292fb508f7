package xdsclient

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// deltaSession is one incremental ADS stream (DeltaAggregatedResources): the server sends
// only resources that changed and the names of those that went away, and the client
// subscribes and unsubscribes names one by one. It runs on the goroutine that called
// Client.Run, like session.
type deltaSession struct {
	*loop[*discoverypb.DeltaDiscoveryRequest, *discoverypb.DeltaDiscoveryResponse]
	conn        *grpc.ClientConn
	st          discoverypb.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	ctx         context.Context
	gotResponse bool
	sentNode    bool
}

func newDeltaSession(c *Client, conn *grpc.ClientConn) *deltaSession {
	s := &deltaSession{conn: conn}
	s.loop = newLoop[*discoverypb.DeltaDiscoveryRequest, *discoverypb.DeltaDiscoveryResponse](c, s.sendRequest)
	return s
}

func (s *deltaSession) responded() bool { return s.gotResponse }

// run opens the stream, subscribes (telling the server what the client already has, so a
// reconnect costs only what changed) and handles responses until the stream or ctx ends.
// A server without the delta protocol ends the stream with codes.Unimplemented.
func (s *deltaSession) run(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = sctx
	st, err := discoverypb.NewAggregatedDiscoveryServiceClient(s.conn).DeltaAggregatedResources(sctx)
	if err != nil {
		return fmt.Errorf("open delta ads stream: %w", err)
	}
	s.st = st
	for _, ts := range s.c.order {
		ts.nonce, ts.requested = "", false
	}
	for _, ts := range s.c.order {
		if !ts.kind.wildcard && len(ts.names) == 0 {
			continue
		}
		req := &discoverypb.DeltaDiscoveryRequest{TypeUrl: ts.kind.url, InitialResourceVersions: s.c.known(ts)}
		if ts.kind.wildcard {
			req.ResourceNamesSubscribe = []string{"*"}
		} else {
			req.ResourceNamesSubscribe = slices.Clone(ts.names)
		}
		if err := s.send(req); err != nil {
			return err
		}
		ts.requested = true
	}

	return s.loop.run(sctx, "delta ads stream", st.Recv, func(r *discoverypb.DeltaDiscoveryResponse) error {
		if !s.gotResponse {
			s.gotResponse = true
			s.c.setConnected(true)
			s.c.log.Info("xds stream connected", "server", s.c.o.Server, "protocol", "delta")
		}
		return s.handle(r)
	})
}

func (s *deltaSession) sendRequest(req *discoverypb.DeltaDiscoveryRequest) error {
	if !s.sentNode {
		req.Node = s.c.node
		s.sentNode = true
	}
	if err := s.st.Send(req); err != nil {
		return fmt.Errorf("send %s delta request: %w", req.GetTypeUrl(), err)
	}
	return nil
}

// handle decodes, applies and ACKs or NACKs one delta response.
func (s *deltaSession) handle(r *discoverypb.DeltaDiscoveryResponse) error {
	c := s.c
	ts := c.types[r.GetTypeUrl()]
	if ts == nil || !ts.requested {
		c.log.Debug("ignoring delta xds response for a type not subscribed", "type", r.GetTypeUrl())
		return nil
	}
	ts.nonce = r.GetNonce()
	s.received(ts)
	now := time.Now()
	cd, err := decodeDelta(ts, r, now)
	var follow *typeState
	var followNames []string
	if err == nil {
		follow, followNames, err = c.accept(ts, cd, r.GetSystemVersionInfo(), now)
	}
	if err != nil {
		return s.nack(ts, r, err, now)
	}
	ts.nackKey, ts.nackDelay = [32]byte{}, 0
	c.log.Info("xds update accepted", "type", ts.kind.short, "version", r.GetSystemVersionInfo(),
		"resources", len(r.GetResources()), "removed", len(r.GetRemovedResources()))
	if err := s.send(&discoverypb.DeltaDiscoveryRequest{TypeUrl: ts.kind.url, ResponseNonce: r.GetNonce()}); err != nil {
		return err
	}
	if follow == nil {
		return nil
	}
	old := follow.names
	follow.setNames(followNames)
	req := &discoverypb.DeltaDiscoveryRequest{TypeUrl: follow.kind.url}
	if !follow.requested {
		req.ResourceNamesSubscribe = slices.Clone(followNames)
		req.InitialResourceVersions = c.known(follow)
	} else {
		req.ResourceNamesSubscribe, req.ResourceNamesUnsubscribe = nameDiff(old, followNames)
	}
	if len(req.ResourceNamesSubscribe) == 0 && len(req.ResourceNamesUnsubscribe) == 0 {
		return nil
	}
	follow.requested = true
	return s.send(req)
}

// nack rejects r (repeated identical rejections are spaced: loop.nack).
func (s *deltaSession) nack(ts *typeState, r *discoverypb.DeltaDiscoveryResponse, cause error, now time.Time) error {
	req := &discoverypb.DeltaDiscoveryRequest{
		TypeUrl: ts.kind.url, ResponseNonce: r.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: int32(codes.InvalidArgument), Message: cause.Error()},
	}
	return s.loop.nack(s.ctx, ts, deltaResponseKey(r), r.GetSystemVersionInfo(), cause.Error(), now, req)
}

// known is what the client holds of ts, by name and server version, for
// initial_resource_versions.
func (c *Client) known(ts *typeState) map[string]string {
	if len(ts.entries) == 0 {
		return nil
	}
	out := make(map[string]string, len(ts.entries))
	for name, e := range ts.entries {
		if e.resVersion != "" {
			out[name] = e.resVersion
		}
	}
	return out
}

// nameDiff returns the names in next but not in prev, and those in prev but not in next
// (both sorted inputs).
func nameDiff(prev, next []string) (added, removed []string) {
	for _, n := range next {
		if _, ok := slices.BinarySearch(prev, n); !ok {
			added = append(added, n)
		}
	}
	for _, n := range prev {
		if _, ok := slices.BinarySearch(next, n); !ok {
			removed = append(removed, n)
		}
	}
	return added, removed
}

// decodeDelta applies a delta response to ts's entries: removed names go, every resource
// sent is decoded (the whole response is rejected if one is invalid) and replaces its
// entry; names the client did not subscribe to are ignored, as Envoy does.
func decodeDelta(ts *typeState, r *discoverypb.DeltaDiscoveryResponse, now time.Time) (*candidate, error) {
	// The entries hold only subscribed names (followers are pruned when their names
	// change). Routes and endpoints are patched in place once accepted; listeners and
	// clusters, whose full set decides what routes and endpoints are subscribed, are copied.
	cd := overlay(r.GetSystemVersionInfo())
	if ts.kind.wildcard {
		cd.entries = maps.Clone(ts.entries)
		if cd.entries == nil {
			cd.entries = map[string]*entry{}
		}
	}
	for _, name := range r.GetRemovedResources() {
		cd.remove(ts, name)
	}
	seen := map[string]bool{}
	for i, res := range r.GetResources() {
		if res.GetResource() == nil {
			continue // a name-only resource (lazy subscriptions); nothing to decode
		}
		if err := cd.add(ts, i, res.GetResource(), res.GetName(), res.GetVersion(), seen, now); err != nil {
			return nil, err
		}
	}
	return cd, nil
}

// deltaResponseKey identifies a delta response's content.
func deltaResponseKey(r *discoverypb.DeltaDiscoveryResponse) [32]byte {
	h := sha256.New()
	h.Write([]byte(r.GetSystemVersionInfo()))
	for _, x := range r.GetResources() {
		h.Write([]byte{0})
		h.Write([]byte(x.GetName()))
		h.Write([]byte{0})
		h.Write(x.GetResource().GetValue())
	}
	for _, n := range r.GetRemovedResources() {
		h.Write([]byte{1})
		h.Write([]byte(n))
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}
