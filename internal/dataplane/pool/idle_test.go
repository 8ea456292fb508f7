package pool

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/testutil"
	"github.com/lucid-mesh/lucid/internal/testutil/upstreamtest"
)

// Tests of the learned idle timeouts (idle.go), on 127.0.95.0/24.

func listen95(t testing.TB, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// countingServer is a net/http server on ip answering "ok" (handler's headers first, if
// any) that closes connections idle for idle (0: never); conns counts its connections.
func countingServer(t *testing.T, ip string, idle time.Duration, header http.Header) (string, *atomic.Int64) {
	t.Helper()
	conns := new(atomic.Int64)
	ln := listen95(t, ip)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: idle,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range header {
				w.Header()[k] = v
			}
			_, _ = io.WriteString(w, "ok")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), conns
}

// silentUpstream is an upstreamtest.IdleCloser on 127.0.95.1 closing connections idle for
// idle, lag after its timer fires, without announcing it.
func silentUpstream(t *testing.T, idle, lag time.Duration) (*upstreamtest.IdleCloser, string) {
	t.Helper()
	u := &upstreamtest.IdleCloser{Lag: lag, IDHeader: "X-Id"}
	u.Idle.Store(int64(idle))
	return u, u.Start(t, "127.0.95.1")
}

// behindRelay is a silentUpstream behind a 5 ms delay relay (on 127.0.95.2), and a pool
// set with cluster "c": the relay's address is the pool's upstream.
func behindRelay(t *testing.T, idle, lag time.Duration) (*upstreamtest.IdleCloser, string, *Set) {
	t.Helper()
	up, upAddr := silentUpstream(t, idle, lag)
	addr := upstreamtest.DelayRelay(t, "127.0.95.2", upAddr, 5*time.Millisecond)
	return up, addr, newSet(t, h1Cluster("c"))
}

func post(t *testing.T, p *Pool, addr, id string) error {
	t.Helper()
	req := newReq(t, http.MethodPost, "/", strings.NewReader("plain"))
	req.Header.Set("X-Id", id)
	r, err := do(t, p, addr, req, nil)
	if err == nil && r.code != http.StatusOK {
		err = fmt.Errorf("status %d", r.code)
	}
	return err
}

// TestPlainPOSTsBehindDelayRelay is the keep-alive race with a silent upstream: idle
// connections closed after 300 ms (5 ms after the timer fires), 5 ms of one-way delay in
// front of it, plain POSTs (not replayable) at intervals straddling 300 ms. After the pool
// has seen the upstream close one idle connection, no POST fails, and no POST is ever
// processed twice (a failed one not at all).
func TestPlainPOSTsBehindDelayRelay(t *testing.T) {
	t.Parallel()
	up, addr, s := behindRelay(t, 300*time.Millisecond, 5*time.Millisecond)
	p := s.Get("c")
	rnd := rand.New(rand.NewPCG(30, 5))
	var failedBefore, failedAfter, sent int
	for i := range 40 {
		time.Sleep(time.Duration(200+rnd.IntN(200)) * time.Millisecond) // 200-400 ms
		info, _ := s.IdleInfo("c", addr)
		id := fmt.Sprintf("post-%d", i)
		err := post(t, p, addr, id)
		sent++
		switch {
		case err == nil:
		case info.Closes == 0:
			failedBefore++
			t.Logf("%s failed before the first observed close: %v", id, err)
		default:
			failedAfter++
			t.Errorf("%s failed after %d observed closes (learned %s): %v", id, info.Closes, info, err)
		}
		if n := up.IDs.Count(id); n > 1 || (err != nil && n != 0) {
			t.Errorf("%s: processed %d times (err %v)", id, n, err)
		}
	}
	info, _ := s.IdleInfo("c", addr)
	if info.Closes == 0 || info.Timeout < 250*time.Millisecond || info.Timeout > 450*time.Millisecond {
		t.Fatalf("learned %+v, want about 300 ms from at least one close", info)
	}
	st := stats(s)
	if st["upstream_cx_idle_retired"]+st["upstream_cx_idle_avoided"] == 0 {
		t.Errorf("no connection was retired or avoided: %v", st)
	}
	t.Logf("%d POSTs, %d failed before the first close, %d after; learned %s, reuse below %s; %d upstream connections; %v",
		sent, failedBefore, failedAfter, info, info.ReuseLimit, up.Conns.Load(), st)
}

// TestIdleTimeoutShrinksAtRunTime: the upstream's idle timeout drops from 600 ms to 200 ms
// while plain POSTs keep coming at intervals straddling the new timeout. The pool learns the
// new timeout from the closes it sees: no POST fails once it has seen three.
func TestIdleTimeoutShrinksAtRunTime(t *testing.T) {
	t.Parallel()
	up, addr, s := behindRelay(t, 600*time.Millisecond, 10*time.Millisecond)
	p := s.Get("c")
	get := func(id string) {
		req := newReq(t, http.MethodGet, "/", nil)
		req.Header.Set("X-Id", id)
		if r, err := do(t, p, addr, req, nil); err != nil || r.code != 200 {
			t.Fatalf("%s: %v %d", id, err, r.code)
		}
	}
	get("warm")
	time.Sleep(900 * time.Millisecond) // the upstream closes it at 600 ms
	get("learn")
	before, _ := s.IdleInfo("c", addr)
	if before.Closes != 1 || before.Timeout < 550*time.Millisecond || before.Timeout > 800*time.Millisecond {
		t.Fatalf("learned %+v, want about 600 ms", before)
	}

	up.Idle.Store(int64(200 * time.Millisecond))
	rnd := rand.New(rand.NewPCG(200, 10))
	failed := 0
	for i := range 40 {
		time.Sleep(time.Duration(150+rnd.IntN(150)) * time.Millisecond) // 150-300 ms
		info, _ := s.IdleInfo("c", addr)
		id := fmt.Sprintf("post-%d", i)
		err := post(t, p, addr, id)
		closes := info.Closes - before.Closes
		if err != nil {
			failed++
			t.Logf("%s failed after %d closes since the change: %v", id, closes, err)
			if closes >= 3 {
				t.Errorf("%s failed after %d closes since the change (learned %s)", id, closes, info)
			}
		}
		if n := up.IDs.Count(id); n > 1 || (err != nil && n != 0) {
			t.Errorf("%s: processed %d times (err %v)", id, n, err)
		}
	}
	after, _ := s.IdleInfo("c", addr)
	if after.Timeout > 300*time.Millisecond {
		t.Fatalf("still learned %s after the change", after)
	}
	t.Logf("%d POSTs failed; learned %s → %s; %d upstream connections; %v", failed, before, after, up.Conns.Load(), stats(s))
}

func stats(s *Set) map[string]uint64 {
	m := map[string]uint64{}
	s.EachStat(func(name string, v uint64) {
		m[name[strings.LastIndex(name, ".")+1:]] += v
	})
	return m
}

// TestIdleEstimate: the learned timeout shrinks to a shorter close at once, grows a quarter
// of the way towards a longer one, grows with requests answered on connections idle longer
// than it, and the reuse limit keeps the margin (round trip + a twentieth, 20 ms to 1 s) below it.
func TestIdleEstimate(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	now := time.Now()
	s := newIdleState(0)
	h := s.host("a")
	check := func(step string, learned, limit time.Duration, retire bool) {
		t.Helper()
		if got := time.Duration(h.learned.Load()); got != learned {
			t.Fatalf("%s: learned %s, want %s", step, got, learned)
		}
		if l, r := h.limit(); l != limit || r != retire {
			t.Fatalf("%s: limit %s retire %v, want %s %v", step, l, r, limit, retire)
		}
	}
	check("nothing known: the bound less a twentieth", 0, ms(950), false)
	h.provenAlive(ms(3000))
	check("answered after 3 s idle", 0, ms(2850), false)
	h.sampleRTT(now, ms(20))
	h.sampleRTT(now, ms(50))
	check("round trip 20 ms", 0, ms(2830), false)
	h.observeClose(now, ms(5000))
	check("first close at 5 s", ms(5000), ms(4730), true)
	h.observeClose(now, ms(2000))
	check("shorter close: at once", ms(2000), ms(1880), true)
	h.observeClose(now, ms(6000))
	check("longer close: a quarter of the way", ms(3000), ms(2830), true)
	h.provenAlive(ms(2500))
	check("answered below the estimate: nothing", ms(3000), ms(2830), true)
	h.provenAlive(ms(7000))
	check("answered after 7 s idle: a quarter of the way", ms(4000), ms(3780), true)
	h.observeClose(now, ms(100000))
	check("a long timeout: margin at most 1 s", ms(28000), ms(26980), true)
	h.observeClose(now, ms(50))
	check("a 50 ms close: margin at least 20 ms", ms(50), ms(10), true)
	h.observeClose(now, ms(5))
	check("shorter than the margin: never reused", ms(5), 0, true)
	h.sampleRTT(now.Add(2*rttWindow), ms(1))
	h.sampleRTT(now.Add(4*rttWindow), ms(2))
	if got := h.rtt(); got != ms(1) {
		t.Fatalf("rtt %s, want the last two windows' minimum 1ms", got)
	}
	if i := h.info(); i.String() != "5ms (learned from 6 upstream closes)" || i.ReuseLimit != 0 {
		t.Fatalf("info %+v %q", i, i)
	}

	off := newIdleState(-1).host("a")
	if l, r := off.limit(); l != maxDuration || r {
		t.Fatalf("bound off: limit %s %v", l, r)
	}
	s.forget("a")
	if !h.forgotten.Load() || s.lookup("a") != nil {
		t.Fatal("forget kept the host")
	}
}

// TestIdleRetiresAtLearnedLimit: once the upstream's idle timeout is learned (1 s, Go's
// IdleTimeout), an idle connection is closed at the reuse limit (about 0.9 s), counted as
// retired, and the connection a request then opens before the upstream would have closed
// the old one is counted as extra. Below the limit a plain POST reuses the connection.
func TestIdleRetiresAtLearnedLimit(t *testing.T) {
	t.Parallel()
	addr, conns := countingServer(t, "127.0.95.3", time.Second, nil)
	logs := &testutil.Buffer{}
	s := NewSet(slog.New(slog.NewTextHandler(logs, nil)))
	s.Update(map[string]*resource.Cluster{"c": h1Cluster("c")})
	t.Cleanup(s.Close)
	p := s.Get("c")
	must := func(method string) {
		t.Helper()
		if r, err := do(t, p, addr, newReq(t, method, "/", strings.NewReader("x")), nil); err != nil || r.code != 200 {
			t.Fatalf("%s: %v %d", method, err, r.code)
		}
	}
	must(http.MethodGet)
	time.Sleep(1500 * time.Millisecond) // the upstream closes it at 1 s
	must(http.MethodGet)
	info, _ := s.IdleInfo("c", addr)
	if info.Closes != 1 || info.Timeout < 900*time.Millisecond || info.Timeout > 1300*time.Millisecond {
		t.Fatalf("learned %+v, want about 1 s", info)
	}
	if l := logs.String(); !strings.Contains(l, "learned the upstream's idle timeout from its closes") || !strings.Contains(l, "addr="+addr) {
		t.Fatalf("log: %s", l)
	}
	time.Sleep(400 * time.Millisecond)
	must(http.MethodPost) // idle 0.4 s: reused
	idle := time.Now()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after the POST, want 2 (reused)", n)
	}
	testutil.Eventually(t, 5*time.Second, "the idle connection's retirement", func() bool { return stats(s)["upstream_cx_idle_retired"] == 1 })
	if d := time.Since(idle); d >= info.Timeout || d < info.ReuseLimit-50*time.Millisecond {
		t.Fatalf("retired after %s idle, want at the reuse limit %s, before the upstream's %s", d, info.ReuseLimit, info.Timeout)
	}
	must(http.MethodGet)
	if st := stats(s); conns.Load() != 3 || st["upstream_cx_idle_extra"] != 1 || st["upstream_cx_idle_avoided"] != 0 {
		t.Fatalf("%d connections, %v; want 3, one extra", conns.Load(), st)
	}
}

// TestIdleBoundBeforeLearning: with nothing learned about an upstream that keeps idle
// connections (net/http, no IdleTimeout), a plain POST does not take a connection idle
// longer than the bound (200 ms here) and opens a new one, counted as avoided and extra;
// replayable requests (GET, PUT, POST with an Idempotency-Key) reuse it; a GET answered
// after 600 ms idle raises the POSTs' limit; old idle connections do not pile up.
func TestIdleBoundBeforeLearning(t *testing.T) {
	t.Parallel()
	addr, conns := countingServer(t, "127.0.95.4", 0, nil)
	s := NewSet(nil)
	s.SetIdleBound(200 * time.Millisecond)
	s.Update(map[string]*resource.Cluster{"c": h1Cluster("c")})
	t.Cleanup(s.Close)
	p := s.Get("c")
	send := func(method string, key bool, pause time.Duration, wantConns int64) {
		t.Helper()
		time.Sleep(pause)
		req := newReq(t, method, "/", strings.NewReader("x"))
		if key {
			req.Header.Set("Idempotency-Key", "k")
		}
		if r, err := do(t, p, addr, req, nil); err != nil || r.code != 200 {
			t.Fatalf("%s: %v %d", method, err, r.code)
		}
		if n := conns.Load(); n != wantConns {
			t.Fatalf("%s after %s idle: %d connections, want %d", method, pause, n, wantConns)
		}
	}
	send(http.MethodPost, false, 0, 1)
	send(http.MethodPost, false, 50*time.Millisecond, 1)  // young: reused
	send(http.MethodPost, false, 300*time.Millisecond, 2) // past the bound: new
	if st := stats(s); st["upstream_cx_idle_avoided"] != 1 || st["upstream_cx_idle_extra"] != 1 {
		t.Fatalf("stats %v", st)
	}
	send(http.MethodGet, false, 300*time.Millisecond, 2)
	send(http.MethodPut, false, 300*time.Millisecond, 2)
	send(http.MethodPost, true, 300*time.Millisecond, 2)
	// Well past what the reuses above proved (300 ms plus the sleeps' overshoot on a
	// loaded machine): a PATCH, which cannot be replayed, takes a new connection.
	send(http.MethodPatch, false, 500*time.Millisecond, 3)
	send(http.MethodGet, false, 600*time.Millisecond, 3) // proves 600 ms: POSTs now up to ~540 ms
	send(http.MethodPost, false, 400*time.Millisecond, 3)
	for range 4 {
		send(http.MethodPost, false, 0, conns.Load()) // settle: reuse the young one
		time.Sleep(700 * time.Millisecond)
		p.h1.mu.Lock()
		n := 0
		if il := p.h1.idle[addr]; il != nil {
			n = len(il.conns)
		}
		p.h1.mu.Unlock()
		if n > 2 {
			t.Fatalf("%d idle connections piled up", n)
		}
		before := conns.Load()
		send(http.MethodPost, false, 0, before+1)
	}
}

// TestKeepAliveHeaderWinsOverBound: a connection whose upstream announced
// "Keep-Alive: timeout=2" is reused by a plain POST after 500 ms, over a 100 ms bound.
func TestKeepAliveHeaderWinsOverBound(t *testing.T) {
	addr, conns := countingServer(t, "127.0.95.5", 2*time.Second, http.Header{"Keep-Alive": {"timeout=2"}})
	s := NewSet(nil)
	s.SetIdleBound(100 * time.Millisecond)
	s.Update(map[string]*resource.Cluster{"c": h1Cluster("c")})
	t.Cleanup(s.Close)
	p := s.Get("c")
	for i := range 2 {
		if i > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		if err := post(t, p, addr, "x"); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	if info, _ := s.IdleInfo("c", addr); info.String() != "2s (Keep-Alive header)" || info.ReuseLimit != 1600*time.Millisecond {
		t.Fatalf("info %+v %q", info, info)
	}
}

// TestForgetHosts: a host that left its cluster loses what was learned about it and its
// idle connections.
func TestForgetHosts(t *testing.T) {
	addr := h1Server(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }, 0)
	s := newSet(t, h1Cluster("c"))
	p := s.Get("c")
	if err := post(t, p, addr, "x"); err != nil {
		t.Fatal(err)
	}
	p.idle.lookup(addr).observeClose(time.Now(), 300*time.Millisecond)
	if info, _ := s.IdleInfo("c", addr); info.Closes != 1 {
		t.Fatalf("info %+v", info)
	}
	s.ForgetHosts("c", []string{addr})
	s.ForgetHosts("gone", []string{addr})
	if info, ok := s.IdleInfo("c", addr); !ok || info.Timeout != 0 || info.String() != "unknown" || info.ReuseLimit != 950*time.Millisecond {
		t.Fatalf("after forgetting: %+v %v", info, ok)
	}
	p.h1.mu.Lock()
	n := p.h1.nidle
	p.h1.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d idle connections left", n)
	}
	if _, ok := s.IdleInfo("gone", addr); ok {
		t.Fatal("info for a cluster without pool")
	}
}

// TestLearnedTimeoutSurvivesSettingsChange: a new pool for the same cluster (its connection
// settings changed) keeps what was learned about the hosts.
func TestLearnedTimeoutSurvivesSettingsChange(t *testing.T) {
	s := newSet(t, h1Cluster("c"))
	s.Get("c").idle.host("a:1").observeClose(time.Now(), 300*time.Millisecond)
	c := h1Cluster("c")
	c.ConnectTimeout = 2 * time.Second
	s.Update(map[string]*resource.Cluster{"c": c})
	if info, _ := s.IdleInfo("c", "a:1"); info.Timeout != 300*time.Millisecond {
		t.Fatalf("info %+v", info)
	}
}

func TestReplayable(t *testing.T) {
	cases := []struct {
		method string
		header string
		want   bool
	}{
		{"GET", "", true}, {"HEAD", "", true}, {"OPTIONS", "", true}, {"TRACE", "", true},
		{"PUT", "", true}, {"DELETE", "", true}, {"", "", true},
		{"POST", "", false}, {"PATCH", "", false}, {"CONNECT", "", false}, {"PROPFIND", "", false},
		{"POST", "Idempotency-Key", true}, {"PATCH", "X-Idempotency-Key", true},
	}
	for _, c := range cases {
		req := &http.Request{Method: c.method, Header: http.Header{}}
		if c.header != "" {
			req.Header.Set(c.header, "k")
		}
		if got := Replayable(req); got != c.want {
			t.Errorf("%s %s: %v", c.method, c.header, got)
		}
	}
}

// TestLearnedTimeoutGrowsThroughProbes: the upstream's idle timeout grows from 300 ms to
// 1.5 s. Connections are retired at the learned limit, except one kept past it per probe
// interval (shortened here): replayable requests answered on it raise the estimate a
// quarter of the way each time; a plain POST never takes it.
func TestLearnedTimeoutGrowsThroughProbes(t *testing.T) {
	defer func(d time.Duration) { IdleProbeInterval = d }(IdleProbeInterval)
	IdleProbeInterval = 100 * time.Millisecond
	up, addr := silentUpstream(t, 300*time.Millisecond, time.Millisecond)
	s := newSet(t, h1Cluster("c"))
	p := s.Get("c")
	send := func(method, id string) {
		t.Helper()
		req := newReq(t, method, "/", strings.NewReader("x"))
		req.Header.Set("X-Id", id)
		if r, err := do(t, p, addr, req, nil); err != nil || r.code != 200 {
			t.Fatalf("%s %s: %v %d", method, id, err, r.code)
		}
	}
	send(http.MethodGet, "warm")
	time.Sleep(500 * time.Millisecond)
	send(http.MethodGet, "learn")
	first, _ := s.IdleInfo("c", addr)
	if first.Closes != 1 || first.Timeout > 450*time.Millisecond {
		t.Fatalf("learned %+v, want about 300 ms", first)
	}
	up.Idle.Store(int64(1500 * time.Millisecond))
	for i := range 6 {
		time.Sleep(700 * time.Millisecond)
		send(http.MethodGet, fmt.Sprint("get-", i))
	}
	grown, _ := s.IdleInfo("c", addr)
	if grown.Timeout < 550*time.Millisecond || grown.Timeout > 700*time.Millisecond {
		t.Fatalf("learned %s after six answers at 700 ms idle, want between 550 and 700 ms", grown)
	}
	// The connection now idles past the limit as a probe; a POST opens a new one.
	time.Sleep(grown.ReuseLimit + 100*time.Millisecond)
	before := up.Conns.Load()
	send(http.MethodPost, "post")
	if up.Conns.Load() != before+1 {
		t.Fatalf("the POST reused a connection idle past the limit")
	}
	t.Logf("learned %s → %s; %d connections; %v", first, grown, up.Conns.Load(), stats(s))
}

func TestExplainReuse(t *testing.T) {
	post := &http.Request{Method: http.MethodPost, Header: http.Header{}}
	learned := &IdleInfo{Timeout: 300 * time.Millisecond, Closes: 2, ReuseLimit: 260 * time.Millisecond}
	cases := []struct {
		req  *http.Request
		info *IdleInfo
		want string
	}{
		{&http.Request{Method: http.MethodGet}, learned, ""},
		{post, learned, "POST without an Idempotency-Key cannot be sent twice, so the sidecar sends it on a new connection or one idle less than 260ms (10.0.0.1:80's idle timeout: 300ms (learned from 2 upstream closes)); a 503 UC for it is therefore not the keep-alive race"},
		{post, &IdleInfo{ReuseLimit: 900 * time.Millisecond}, "one idle less than 900ms (10.0.0.1:80's idle timeout is not learned yet; the bound until then is --upstream-idle-bound)"},
		{post, &IdleInfo{ReuseLimit: -1}, "the reuse bound is off (--upstream-idle-bound), so a 503 UC for it may be the keep-alive race"},
		{post, nil, "one idle less than the host's reuse limit (/clusters idle_reuse_limit)"},
	}
	for _, c := range cases {
		got := ExplainReuse(c.req, "10.0.0.1:80", c.info)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}
