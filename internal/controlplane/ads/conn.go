package ads

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"slices"
	"time"

	corepb "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lucid-mesh/lucid/internal/contract"
)

// conn is one xDS stream. Its goroutine (serveStream's) owns the fields below the line;
// Push only sets the pending fields (under Server.mu) and wakes it.
type conn struct {
	s      *Server
	id     int64
	st     stream
	only   string // a per-type stream's type URL; "" for ADS
	node   *corepb.Node
	nodeID string
	log    *slog.Logger

	reqs    chan *request
	recvErr chan error
	wakeC   chan struct{} // holds at most one token: "a push is pending"

	// Guarded by Server.mu.
	pending      bool
	pendingStart time.Time // when the oldest change not yet pushed to this stream happened
	pendingFull  bool
	lagSince     time.Time // when the oldest change this stream has not acknowledged happened

	// Owned by the stream's goroutine.
	ctx      context.Context
	cleanup  *time.Timer       // pending removeStale (nil: none)
	deferred bool              // a push waits for the client to answer a response
	watches  map[string]*watch // by type URL
	cur      map[string]view   // the newest generated resources, by type URL
	curHash  map[string][32]byte
	curVer   map[string]string
	nonce    int64
}

// watch is one type's subscription on a stream and what was sent for it.
type watch struct {
	typeURL  string
	active   bool // a request for the type arrived
	wildcard bool
	legacy   bool     // no name subscribed yet: an empty request still means "everything"
	names    *nameSet // shared with every watch that subscribes to the same names (names.go)

	sent     view // the resources the client was last brought up to (nil: nothing sent)
	sentHash [32]byte
	version  string // version_info of sent
	nonce    string // of the last response
	acked    bool   // the last response was acked
	answered bool   // the last response was acked or rejected
	resync   bool   // after a NACK: the next response carries every subscribed resource
	known    map[string]string
}

func (w *watch) subscribed(name string) bool { return w.wildcard || w.names.has(name) }

// serveStream serves one stream until the client leaves or the server stops.
func (s *Server) serveStream(ctx context.Context, st stream, only string) error {
	sctx := st.context().Context()
	first, err := st.recv()
	if err != nil {
		return nil // gone before its first request
	}
	id := first.node.GetId()
	if id == "" {
		return status.Error(codes.InvalidArgument, "node.id is required on the first request of a stream")
	}
	if s.Authorize != nil {
		if err := s.Authorize(sctx, first.node); err != nil {
			return err
		}
	}
	c := s.register(st, only, first.node)
	defer s.unregister(c)
	defer func() {
		if c.cleanup != nil {
			c.cleanup.Stop()
		}
	}()
	c.ctx = sctx

	go func() {
		for {
			r, err := st.recv()
			if err != nil {
				c.recvErr <- err
				return
			}
			select {
			case c.reqs <- r:
			case <-sctx.Done():
				return
			}
		}
	}()

	if err := c.handle(first); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sctx.Done():
			return nil
		case err := <-c.recvErr:
			return streamEnd(err)
		case r := <-c.reqs:
			if err := c.handle(r); err != nil {
				return err
			}
		case <-c.wakeC:
			if err := c.push(); err != nil {
				return err
			}
		case <-c.cleanupC():
			if err := c.removeStale(); err != nil {
				return err
			}
		}
	}
}

// cleanupC is the pending removal's timer channel (nil, never ready, when none is).
func (c *conn) cleanupC() <-chan time.Time {
	if c.cleanup == nil {
		return nil
	}
	return c.cleanup.C
}

// streamEnd turns the receive error that ended a stream into serveStream's result.
func streamEnd(err error) error {
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
		return nil
	}
	return err
}

func (s *Server) register(st stream, only string, node *corepb.Node) *conn {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := node.GetId()
	c := &conn{
		s: s, id: s.nextID, st: st, only: only, node: node, nodeID: id,
		log:     s.log.With("proxy", id, "stream", s.nextID),
		reqs:    make(chan *request, 16),
		recvErr: make(chan error, 1),
		wakeC:   make(chan struct{}, 1),
		watches: map[string]*watch{},
		curHash: map[string][32]byte{},
		curVer:  map[string]string{},
	}
	n := s.nodes[id]
	if n == nil || n.streams == 0 {
		// A fresh connection: what an earlier connection was sent does not count.
		n = &nodeState{connectedAt: now, types: map[string]*typeState{}}
		s.nodes[id] = n
	}
	n.node = node
	n.streams++
	s.conns[c.id] = c
	proto := "sotw"
	if st.delta() {
		proto = "delta"
	}
	c.log.Info("proxy connected", "protocol", proto)
	return c
}

func (s *Server) unregister(c *conn) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c.id)
	n := s.nodes[c.nodeID]
	if n == nil {
		return
	}
	n.streams--
	if n.streams == 0 {
		n.disconnectedAt = now
		c.log.Info("proxy disconnected")
	}
}

// markPendingLocked records a push for c. Callers hold Server.mu.
func (c *conn) markPendingLocked(r PushRequest) {
	if !c.pending || r.Start.Before(c.pendingStart) {
		c.pendingStart = r.Start
	}
	c.pending = true
	c.pendingFull = c.pendingFull || r.Full
	if c.lagSince.IsZero() {
		c.lagSince = r.Start
	}
}

func (c *conn) wake() {
	select {
	case c.wakeC <- struct{}{}:
	default: // already pending: the push will use the newest configuration
	}
}

func (c *conn) takePending() (start time.Time, full bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	start, full = c.pendingStart, c.pendingFull
	c.pending, c.pendingStart, c.pendingFull = false, time.Time{}, false
	return start, full
}

// handle processes one request: an ACK or NACK of the last response of its type, and any
// change of subscription, answered at once from the newest resources.
func (c *conn) handle(r *request) error {
	t := r.typeURL
	if t == "" {
		t = c.only
	}
	if c.only != "" && t != c.only {
		return status.Errorf(codes.InvalidArgument, "this stream serves %s only; got a request for %s", shortType(c.only), t)
	}
	if !slices.Contains(xdsTypes, t) {
		c.log.Debug("request for a type this server does not serve; ignored", "type", t)
		return nil
	}
	w := c.watches[t]
	if w == nil {
		w = &watch{typeURL: t, legacy: true, names: emptyNames}
		c.watches[t] = w
	}
	c.answered(w, r)
	added, all, first := w.update(r, c.st.delta(), &c.s.names)
	if c.cur == nil && !c.generate() {
		return nil // nothing to answer with yet; the next push answers
	}
	return c.answer(w, added, all, first)
}

// update applies a request's subscription to w. It returns the names newly subscribed,
// whether the whole type became subscribed (a new wildcard), and whether the request
// asks for everything subscribed again (a stream's first request of the type, or a SotW
// request without a nonce).
func (w *watch) update(r *request, delta bool, in *nameInterner) (added []string, all, first bool) {
	wasActive, wasWildcard := w.active, w.wildcard
	w.active = true
	if !delta {
		first = !wasActive || r.nonce == ""
		names := map[string]bool{}
		wildcard := false
		for _, n := range r.names {
			if n == "*" {
				wildcard = true
				continue
			}
			names[n] = true
		}
		if len(r.names) == 0 && w.legacy {
			wildcard = true
		}
		if len(r.names) > 0 {
			w.legacy = false
		}
		for n := range names {
			if !w.names.has(n) {
				added = append(added, n)
			}
		}
		if !sameNames(w.names, names) {
			w.names = in.intern(names)
		}
		w.wildcard = wildcard
		return added, wildcard && !wasWildcard, first
	}
	first = !wasActive
	if first {
		w.known = r.initial
		if len(r.subscribe) == 0 {
			w.wildcard = true
		}
	}
	var drop []string
	var adding map[string]bool // a name twice in one request is added once
	for _, n := range r.subscribe {
		if n == "*" {
			w.wildcard = true
			continue
		}
		w.legacy = false
		if !w.names.has(n) && !adding[n] {
			if adding == nil {
				adding = map[string]bool{}
			}
			adding[n] = true
			added = append(added, n)
		}
	}
	for _, n := range r.unsubscribe {
		if n == "*" {
			w.wildcard = false
			continue
		}
		drop = append(drop, n)
	}
	w.names = w.names.with(in, added, drop)
	return added, w.wildcard && !wasWildcard, first
}

// answer responds to a subscription change. A stream's first request of a type (or a
// new wildcard) gets every subscribed resource of the newest generation; names added to a
// subscription get their resources as the client's view of the type has them (so the push
// that brings the rest stays correct).
func (c *conn) answer(w *watch, added []string, all, first bool) error {
	delta := c.st.delta()
	var v view
	var res []*resource
	var removed []string
	var held bool // a reconnecting delta client named the versions it holds
	switch {
	case first || all:
		held = first && delta && len(w.known) > 0
		v = c.cur[w.typeURL]
		v.each(func(r *resource) {
			if w.subscribed(r.name) && (w.known == nil || w.known[r.name] != r.version) {
				res = append(res, r)
			}
		})
		if delta {
			for n := range w.known {
				if w.subscribed(n) && v.get(n) == nil {
					removed = append(removed, n)
				}
			}
			for n := range w.names.m {
				if _, ok := w.known[n]; !ok && v.get(n) == nil {
					removed = append(removed, n) // subscribed, does not exist (yet)
				}
			}
		}
		w.known = nil
	case len(added) > 0:
		v = w.sent
		if v == nil {
			v = c.cur[w.typeURL]
		}
		for _, n := range added {
			if r := v.get(n); r != nil {
				res = append(res, r)
			} else if delta {
				removed = append(removed, n) // does not exist (yet)
			}
		}
		if fullState(w.typeURL) && !delta {
			res = subscribedIn(w, v)
		}
	default:
		return nil
	}
	// A stream's first response of a type goes out even when empty: the client may wait
	// for it, and a client that reconnects already holding every resource at its version
	// (delta's initial versions) still acknowledges this control plane's state, which
	// proxy-status shows as SYNCED rather than NOT SENT. Any SotW listener or cluster
	// response goes out too (absence of a named resource is news there).
	must := (first && (w.wildcard || fullState(w.typeURL))) || (fullState(w.typeURL) && !delta)
	if len(res) == 0 && len(removed) == 0 && !must {
		if w.sent == nil {
			w.sent, w.sentHash = v, v.hash()
		}
		if held {
			// Nothing to send: the client already holds this control plane's state, which
			// proxy-status must show as SYNCED (not NOT SENT after a control plane restart).
			w.version = c.versionOf(w, v)
			c.s.recordHeld(c, w.typeURL, w.version)
		}
		return nil
	}
	slices.Sort(removed)
	return c.send(w, v, res, removed, time.Time{})
}

// versionOf is the version_info of w's type when the client is brought up to v: the
// version last sent when v is what was sent, the generation's version when v is the
// newest generation, else a version derived from v's hash.
func (c *conn) versionOf(w *watch, v view) string {
	h := v.hash()
	switch {
	case w.version != "" && h == w.sentHash:
		return w.version
	case h == c.curHash[w.typeURL] && c.curVer[w.typeURL] != "":
		return c.curVer[w.typeURL]
	}
	return c.s.currentVersion() + "-" + hex.EncodeToString(h[:4])
}

// send writes one response for w (res: resources new or changed, removed: names gone) and
// records that the client is now brought up to v.
func (c *conn) send(w *watch, v view, res []*resource, removed []string, pushStart time.Time) error {
	h := v.hash()
	version := c.versionOf(w, v)
	c.nonce++
	resp := &response{typeURL: w.typeURL, version: version, nonce: itoa(c.nonce), resources: res, removed: removed}
	if err := c.st.send(resp); err != nil {
		return err
	}
	w.sent, w.sentHash, w.version, w.nonce, w.acked, w.answered, w.resync = v, h, version, resp.nonce, false, false, false
	c.s.recordSent(c, w.typeURL, version, resp.nonce)
	if m := c.s.Metrics; m != nil {
		m.pushed(w.typeURL, pushStart, c.s.now())
	}
	return nil
}

// answered records whether r acknowledges or rejects the last response of its type.
func (c *conn) answered(w *watch, r *request) {
	if r.nonce == "" || r.nonce != w.nonce {
		return // nothing sent yet, or an answer to an older response
	}
	w.answered = true
	if c.deferred { // a push waited for this answer
		c.deferred = false
		c.wake()
	}
	if r.nack != "" {
		w.resync = true // the client kept its old state; next time send it everything
		c.s.recordNack(c, w.typeURL, r.nack)
		return
	}
	w.acked = true
	c.s.recordAck(c, w.typeURL, r.version)
	c.maybeSynced()
}

// maybeSynced clears the stream's lag once every response it was sent is acked and no
// push is pending.
func (c *conn) maybeSynced() {
	for _, w := range c.watches {
		if w.nonce != "" && !w.acked {
			return
		}
	}
	c.s.mu.Lock()
	if !c.pending {
		c.lagSince = time.Time{}
	}
	c.s.mu.Unlock()
}

// generate renders the node's resources under the newest configuration into c.cur. It
// reports false (and keeps the last good resources) when the generator fails or its
// output is inconsistent.
func (c *conn) generate() bool {
	select {
	case c.s.sem <- struct{}{}:
	case <-c.ctx.Done():
		return false
	}
	res, err := c.s.gen.Generate(c.node)
	if err == nil {
		var next map[string]view
		next, err = c.s.views(res)
		if err == nil {
			err = c.s.consistent(next)
			if err != nil {
				<-c.s.sem
				c.log.Error("inconsistent configuration not sent; proxy keeps its last good configuration",
					"version", c.s.currentVersion(), "reason", err.Error())
				return false
			}
			c.setCur(next)
		}
	}
	<-c.s.sem
	if errors.Is(err, ErrNotReady) {
		c.log.Debug("proxy connected before the first configuration; the first push answers it")
		return false
	}
	if err != nil {
		c.log.Error("generating configuration failed; proxy keeps its last good configuration",
			"version", c.s.currentVersion(), "error", err)
		return false
	}
	return true
}

// setCur makes next the newest resources, versioning each type whose content changed.
func (c *conn) setCur(next map[string]view) {
	version := c.s.currentVersion()
	for t, v := range next {
		h := v.hash()
		if h != c.curHash[t] || c.curVer[t] == "" {
			c.curHash[t], c.curVer[t] = h, version+"-"+hex.EncodeToString(h[:4])
		}
	}
	c.cur = next
	c.s.recordGenerated(c.nodeID, next, c.curVer)
}

// views turns a Generator's parts into views, one per served type.
func (s *Server) views(res Resources) (map[string]view, error) {
	for t := range res {
		if !slices.Contains(xdsTypes, t) {
			s.log.Error("generator returned a type this server does not serve; ignored", "type", t)
		}
	}
	out := make(map[string]view, len(xdsTypes))
	for _, t := range xdsTypes {
		v, err := s.table.viewOf(t, res[t])
		if err != nil {
			return nil, err
		}
		out[t] = v
	}
	return out, nil
}

// push sends a connection what changed since it was last brought up to date, in Envoy's
// order: clusters, endpoints, (once the client has subscribed to the endpoints of new
// clusters) listeners, routes; clusters and endpoints that went away are removed last
// when listeners or routes changed with them, so no route points at a cluster that is
// already gone (make before break).
func (c *conn) push() error {
	start, full := c.takePending()
	if c.unanswered() {
		// A response is still unanswered: the push waits for the answer (then runs with the
		// newest configuration), so a client that does not keep up has at most one
		// response per type in flight and the server's memory for it stays bounded.
		c.s.mu.Lock()
		c.markPendingLocked(PushRequest{Start: start, Full: full})
		c.s.mu.Unlock()
		c.deferred = true
		return nil
	}
	began := c.s.now()
	if !c.generate() {
		c.maybeSynced()
		return nil
	}
	type change struct {
		res     []*resource
		removed []string
	}
	changes := map[string]change{}
	routing := false // listeners or routes change
	for _, t := range xdsTypes {
		w := c.watches[t]
		if w == nil || !w.active {
			continue
		}
		res, removed := c.diff(w, c.cur[t])
		changes[t] = change{res, removed}
		if (t == contract.ListenerTypeURL || t == contract.RouteTypeURL) && (len(res) > 0 || len(removed) > 0) {
			routing = true
		}
	}
	sent, cdsSent, held := false, false, false
	for _, t := range xdsTypes {
		if t == contract.ListenerTypeURL && cdsSent {
			if err := c.warm(); err != nil {
				return err
			}
		}
		w, ch := c.watches[t], changes[t]
		if w == nil || !w.active {
			continue
		}
		v, res, removed := c.cur[t], ch.res, ch.removed
		if (routing || c.cleanup != nil) && len(removed) > 0 && (t == contract.ClusterTypeURL || t == contract.EndpointTypeURL) {
			v = append(slices.Clip(v), c.keep(w.sent, removed))
			removed, held = nil, true
		}
		if len(res) == 0 && (len(removed) == 0 || (!c.st.delta() && !fullState(t))) {
			// Nothing the client lacks (SotW has no removal of routes or endpoints: the
			// client unsubscribes from them).
			w.sent, w.sentHash = v, v.hash()
			continue
		}
		if fullState(t) && !c.st.delta() {
			res, removed = subscribedIn(w, v), nil
		}
		if err := c.send(w, v, res, removed, began); err != nil {
			return err
		}
		sent = true
		cdsSent = cdsSent || t == contract.ClusterTypeURL
	}
	if held || (routing && c.cleanup != nil) {
		// Removals wait until the routes that used them have been in place for a while:
		// a request that matched the old route just before the new one arrived still finds
		// its cluster.
		if c.cleanup == nil {
			c.cleanup = time.NewTimer(c.s.RemovalGrace)
		} else {
			c.cleanup.Reset(c.s.RemovalGrace)
		}
	}
	if sent {
		if m := c.s.Metrics; m != nil && !start.IsZero() {
			m.converged(start, c.s.now(), full)
		}
	}
	c.maybeSynced()
	return nil
}

// unanswered reports whether a response of an active type awaits the client's ACK or NACK.
func (c *conn) unanswered() bool {
	for _, w := range c.watches {
		if w.active && w.nonce != "" && !w.answered {
			return true
		}
	}
	return false
}

// removeStale sends the removal of the clusters and endpoints a push kept for the routes
// that used them (make before break), RemovalGrace after the last routing change.
func (c *conn) removeStale() error {
	if c.unanswered() {
		c.cleanup.Reset(100 * time.Millisecond) // after the client's answer
		return nil
	}
	c.cleanup = nil
	for _, t := range []string{contract.EndpointTypeURL, contract.ClusterTypeURL} {
		w, v := c.watches[t], c.cur[t]
		if w == nil || !w.active || w.sent == nil {
			continue
		}
		_, removed := c.diff(w, v)
		if len(removed) == 0 || (!c.st.delta() && !fullState(t)) {
			w.sent, w.sentHash = v, v.hash()
			continue
		}
		var res []*resource
		if !c.st.delta() {
			res, removed = subscribedIn(w, v), nil
		}
		if err := c.send(w, v, res, removed, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// warm waits until the client has subscribed to the endpoints of every EDS cluster it was
// sent (so a route never points at a cluster whose endpoints are still on their way), or
// WarmTimeout passes. Requests arriving meanwhile are handled as usual (which answers the
// new subscriptions).
func (c *conn) warm() error {
	cds, eds := c.watches[contract.ClusterTypeURL], c.watches[contract.EndpointTypeURL]
	if cds == nil || eds == nil || !eds.active || eds.wildcard {
		return nil
	}
	missing := func() bool {
		if cds.resync { // the clusters were rejected: nothing will subscribe
			return false
		}
		found := false
		cds.sent.each(func(r *resource) {
			if found || !cds.subscribed(r.name) {
				return
			}
			for _, ref := range r.refs {
				if !eds.names.has(ref) {
					found = true
				}
			}
		})
		return found
	}
	if !missing() {
		return nil
	}
	t := time.NewTimer(c.s.WarmTimeout)
	defer t.Stop()
	for missing() {
		select {
		case <-c.ctx.Done():
			return nil
		case err := <-c.recvErr:
			c.recvErr <- err // serveStream sees it next
			return nil
		case r := <-c.reqs:
			if err := c.handle(r); err != nil {
				return err
			}
		case <-t.C:
			c.log.Warn("client did not subscribe to the endpoints of new clusters; sending listeners and routes anyway",
				"after", c.s.WarmTimeout)
			return nil
		}
	}
	return nil
}

// keep is a set of the resources of sent named in removed: what the client keeps until
// the routing that used them is gone.
func (c *conn) keep(sent view, removed []string) *set {
	s := &set{byName: make(map[string]*resource, len(removed))}
	for _, n := range removed {
		if r := sent.get(n); r != nil {
			s.byName[n] = r
			s.names = append(s.names, n)
		}
	}
	slices.Sort(s.names)
	s.sum = [32]byte{1} // never equal to a real set
	for _, n := range s.names {
		for i, b := range s.byName[n].sum {
			s.sum[i] ^= b
		}
	}
	return s
}

// subscribedIn lists the subscribed resources of v.
func subscribedIn(w *watch, v view) []*resource {
	out := make([]*resource, 0, v.len())
	v.each(func(r *resource) {
		if w.subscribed(r.name) {
			out = append(out, r)
		}
	})
	return out
}

// diff returns what w's client lacks of next: subscribed resources that are new or
// changed since w.sent, and subscribed names that are gone.
func (c *conn) diff(w *watch, next view) (res []*resource, removed []string) {
	old := w.sent
	if w.resync || old == nil {
		next.each(func(r *resource) {
			if w.subscribed(r.name) {
				res = append(res, r)
			}
		})
		old.each(func(r *resource) {
			if w.subscribed(r.name) && next.get(r.name) == nil {
				removed = append(removed, r.name)
			}
		})
		return res, removed
	}
	if samePointers(old, next) {
		return nil, nil
	}
	if len(old) != len(next) {
		next.each(func(r *resource) {
			if o := old.get(r.name); (o == nil || o.sum != r.sum) && w.subscribed(r.name) {
				res = append(res, r)
			}
		})
		old.each(func(r *resource) {
			if next.get(r.name) == nil && w.subscribed(r.name) {
				removed = append(removed, r.name)
			}
		})
		return res, removed
	}
	for i := range next {
		if old[i] == next[i] {
			continue
		}
		d := c.s.pairDiff(old[i], next[i])
		for _, r := range d.changed {
			if w.subscribed(r.name) {
				if o := old.get(r.name); o == nil || o.sum != r.sum {
					res = append(res, r)
				}
			}
		}
		for _, n := range d.removed {
			if w.subscribed(n) && next.get(n) == nil {
				removed = append(removed, n)
			}
		}
	}
	return res, removed
}

// pairDiff is the difference between two sets: what b has new or changed, what it lacks.
type pairDiff struct {
	changed []*resource
	removed []string
}

// pairDiff computes (once per push for every pair, however many connections ask) how b
// differs from a.
func (s *Server) pairDiff(a, b *set) *pairDiff {
	k := [2]*set{a, b}
	if d, ok := s.diffs.Load(k); ok {
		return d.(*pairDiff)
	}
	d := &pairDiff{}
	for _, n := range b.names {
		r := b.byName[n]
		if o := a.byName[n]; o == nil || o.sum != r.sum {
			d.changed = append(d.changed, r)
		}
	}
	for _, n := range a.names {
		if b.byName[n] == nil {
			d.removed = append(d.removed, n)
		}
	}
	actual, _ := s.diffs.LoadOrStore(k, d)
	return actual.(*pairDiff)
}
