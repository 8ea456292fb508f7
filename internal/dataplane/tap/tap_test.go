package tap

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lucid-mesh/lucid/internal/dataplane/stats"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is an outbound request from productpage to reviews.
func request(path string, code int, flags streaminfo.Flag) *streaminfo.Info {
	return &streaminfo.Info{
		Start: time.Unix(1700000000, 0), Duration: 1500 * time.Microsecond,
		Method: "GET", Path: path, Protocol: "HTTP/1.1", Authority: "reviews:9080",
		ResponseCode: code, Flags: flags, Direction: "outbound",
		UpstreamHost: "127.0.10.2:9080", UpstreamCluster: "outbound|9080|v1|reviews.default.svc.cluster.local",
		Source:             streaminfo.Peer{Workload: "productpage", Namespace: "default"},
		Destination:        streaminfo.Peer{Workload: "reviews-v1", Namespace: "default"},
		DestinationService: "reviews.default.svc.cluster.local",
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"status=6xx", `status "6xx": "6xx" is neither a status code (200, 503) nor a class (2xx, 5xx)`},
		{"status=abc", `"abc" is neither a status code`},
		{"flags=UH,XX", `flags "UH,XX": "XX" is not an Envoy response flag`},
		{"direction=up", `direction "up": want inbound or outbound`},
		{"path=v3", `path "v3": want a prefix starting with /`},
		{"rps=0", `rps "0": want a number of events per second from 1 to 1000`},
		{"rps=5000", `rps "5000"`},
		{"errors=maybe", `errors "maybe": want true or false`},
	} {
		q, _ := url.ParseQuery(tc.query)
		_, err := ParseFilter(q)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFilter(%s) = %v, want an error containing %q", tc.query, err, tc.want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	ok := request("/reviews/1", 200, 0)
	uh := request("/v3/reviews", 503, streaminfo.NoHealthyUpstream)
	uh.UpstreamHost, uh.Destination = "", streaminfo.Peer{}
	inbound := request("/reviews/1", 200, 0)
	inbound.Direction, inbound.Method = "inbound", "POST"
	notFound := request("/nothing", 404, 0)
	noService := request("/x", 200, 0)
	noService.DestinationService = ""
	for _, tc := range []struct {
		query string
		in    *streaminfo.Info
		want  bool
	}{
		{"", ok, true},
		{"to=reviews", ok, true},
		{"to=reviews.default", ok, true},
		{"to=reviews.default.svc.cluster.local", ok, true},
		{"to=review", ok, false},
		{"to=ratings", ok, false},
		{"to=reviews", noService, true}, // by authority
		{"path=/v3", uh, true},
		{"path=/v3", ok, false},
		{"method=post", inbound, true},
		{"method=GET", inbound, false},
		{"direction=inbound", inbound, true},
		{"direction=inbound", ok, false},
		{"status=5xx", uh, true},
		{"status=5xx", ok, false},
		{"status=404,503", notFound, true},
		{"status=404,503", ok, false},
		{"flags=UH,UC", uh, true},
		{"flags=UC", uh, false},
		{"flags=UH", ok, false},
		{"errors=true", uh, true},
		{"errors=true", notFound, false},
		{"errors=true&to=reviews&path=/v3&status=503&flags=uh", uh, true},
	} {
		q, _ := url.ParseQuery(tc.query)
		f, err := ParseFilter(q)
		if err != nil {
			t.Fatalf("ParseFilter(%s): %v", tc.query, err)
		}
		if got := f.Match(tc.in); got != tc.want {
			t.Errorf("filter %q on %s %s %d %s: match = %t, want %t", tc.query, tc.in.Direction, tc.in.Path, tc.in.ResponseCode, tc.in.Flags, got, tc.want)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "to=reviews&path=/v3", "status=5xx,404&flags=UH,UC", "rps=10&errors=1", "direction=inbound&method=get", "status=%00"} {
		f.Add(s)
	}
	in := request("/v3", 503, streaminfo.NoHealthyUpstream)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		flt.defaults()
		if flt.RPS < 1 || flt.RPS > MaxRPS {
			t.Fatalf("rps %d out of range", flt.RPS)
		}
		_ = flt.Match(in)
	})
}

func TestEventCarriesTheRequest(t *testing.T) {
	h := New("productpage.default")
	s, err := h.Subscribe(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := request("/v3", 503, streaminfo.NoHealthyUpstream)
	in.LucidError = `UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints`
	h.Observe(in)
	ev := <-s.Events()
	if ev.Proxy != "productpage.default" || ev.Method != "GET" || ev.Path != "/v3" || ev.Status != 503 || ev.Flags != "UH" ||
		ev.DurationMS != 1.5 || ev.Source != "productpage" || ev.DestinationService != "reviews.default.svc.cluster.local" ||
		ev.Error != in.LucidError || ev.UpstreamCluster != in.UpstreamCluster || ev.Authority != "reviews:9080" {
		t.Errorf("event = %+v", ev)
	}
}

func TestRateLimitPerSecond(t *testing.T) {
	h := New("p.default")
	var sec atomic.Int64
	sec.Store(100)
	h.now = func() time.Time { return time.Unix(sec.Load(), 0) }
	s, _ := h.Subscribe(Filter{RPS: 10})
	defer s.Close()
	in := request("/", 200, 0)
	for range 50 {
		h.Observe(in)
	}
	if n := len(s.Events()); n != 10 {
		t.Errorf("delivered %d events in one second at rps 10, want 10", n)
	}
	if d := s.Dropped(); d != 40 {
		t.Errorf("dropped = %d, want 40", d)
	}
	sec.Add(1)
	for range 50 {
		h.Observe(in)
	}
	if n := len(s.Events()); n != 20 {
		t.Errorf("delivered %d events after two seconds, want 20", n)
	}
}

// A listener that stops reading never blocks the request path: its buffer fills and
// the rest is dropped.
func TestSlowListenerNeverBlocks(t *testing.T) {
	h := New("p.default")
	slow, _ := h.Subscribe(Filter{RPS: MaxRPS})
	defer slow.Close()
	other, _ := h.Subscribe(Filter{RPS: MaxRPS, PathPrefix: "/other"})
	defer other.Close()
	in := request("/", 200, 0)
	for range MaxRPS {
		h.Observe(in) // would hang here if a full buffer blocked
	}
	if n := len(slow.Events()); n != Buffer {
		t.Errorf("buffered %d, want %d", n, Buffer)
	}
	if d := slow.Dropped(); d != uint64(MaxRPS-Buffer) {
		t.Errorf("dropped %d, want %d", d, MaxRPS-Buffer)
	}
	if n := len(other.Events()); n != 0 {
		t.Errorf("the /other listener got %d events", n)
	}
}

func TestCloseAndStop(t *testing.T) {
	h := New("p.default")
	a, _ := h.Subscribe(Filter{})
	b, _ := h.Subscribe(Filter{})
	if h.Listeners() != 2 {
		t.Fatalf("listeners = %d", h.Listeners())
	}
	a.Close()
	a.Close()
	select {
	case <-a.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if h.Listeners() != 1 {
		t.Errorf("listeners after one Close = %d, want 1", h.Listeners())
	}
	h.Observe(request("/", 200, 0))
	if len(a.Events()) != 0 || len(b.Events()) != 1 {
		t.Errorf("closed listener got %d, open one %d", len(a.Events()), len(b.Events()))
	}
	h.Close()
	select {
	case <-b.Done():
	default:
		t.Error("hub Close did not end the listener")
	}
	b.Close() // after the hub closed: harmless
	if h.Listeners() != 0 {
		t.Errorf("listeners after hub Close = %d", h.Listeners())
	}
	if _, err := h.Subscribe(Filter{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestConcurrentObserveAndSubscribe(t *testing.T) {
	h := New("p.default")
	in := request("/", 200, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					h.Observe(in)
				}
			}
		})
	}
	for range 200 {
		s, err := h.Subscribe(Filter{RPS: MaxRPS})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	close(stop)
	wg.Wait()
	if h.Listeners() != 0 {
		t.Errorf("listeners = %d", h.Listeners())
	}
}

// BenchmarkObserve is the tap's cost per finished request, beside the cost of the
// stats observer every request already pays (BenchmarkStatsRecord).
func BenchmarkObserve(b *testing.B) {
	in := request("/reviews/1", 200, 0)
	b.Run("no-listener", func(b *testing.B) {
		h := New("p.default")
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(in)
		}
	})
	b.Run("listener-filtered-out", func(b *testing.B) {
		h := New("p.default")
		s, _ := h.Subscribe(Filter{PathPrefix: "/v3"})
		defer s.Close()
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(in)
		}
	})
	// Past the listener's rate: the steady state of a tap under load (5k rps against
	// the default 100 events/s).
	b.Run("listener-rate-limited", func(b *testing.B) {
		h := New("p.default")
		s, _ := h.Subscribe(Filter{RPS: 1})
		defer s.Close()
		h.Observe(in)
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(in)
		}
	})
	b.Run("listener-delivered", func(b *testing.B) {
		h := New("p.default")
		s, _ := h.Subscribe(Filter{RPS: MaxRPS})
		defer s.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-s.Events():
				case <-s.Done():
					return
				}
			}
		}()
		var sec int64
		h.now = func() time.Time { return time.Unix(sec, 0) }
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if i%MaxRPS == 0 { // a fresh window every MaxRPS requests: every request is delivered
				sec++
			}
			h.Observe(in)
		}
		b.StopTimer()
		s.Close()
		<-done
	})
}

func BenchmarkStatsRecord(b *testing.B) {
	st := stats.New(streaminfo.Peer{Workload: "productpage", Namespace: "default"})
	in := request("/reviews/1", 200, 0)
	b.ReportAllocs()
	for b.Loop() {
		st.Record(in)
	}
}
