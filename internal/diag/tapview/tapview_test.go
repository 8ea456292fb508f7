package tapview

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/contract"
)

func TestURL(t *testing.T) {
	f := Filter{To: "reviews", Path: "/v3", Status: "5xx", Flags: "UH,UC", ErrorsOnly: true, MaxRPS: 10}
	if got, want := (Source{Debug: "127.0.0.1:15014", Workload: "curl.default"}).URL(f),
		"http://127.0.0.1:15014/debug/tap?errors=true&flags=UH%2CUC&path=%2Fv3&rps=10&status=5xx&to=reviews&workload=curl.default"; got != want {
		t.Errorf("relay URL = %s, want %s", got, want)
	}
	if got, want := (Source{Debug: "x", Workload: "y", Admin: "127.0.10.1:15000"}).URL(Filter{Method: "GET"}),
		"http://127.0.10.1:15000/tap?method=GET"; got != want {
		t.Errorf("admin URL = %s, want %s", got, want)
	}
}

var uh = contract.TapEvent{
	Time: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.Local), Proxy: "curl.default", Direction: "outbound", Protocol: "HTTP/1.1",
	Method: "GET", Authority: "reviews:9080", Path: "/v3/reviews", Status: 503, Flags: "UH", DurationMS: 0.42,
	UpstreamCluster: "outbound|9080|v3|reviews.default.svc.cluster.local", Route: "v3", Source: "curl", RequestID: "r1",
	Error: `UH: subset "v3" of reviews.default.svc.cluster.local selects 0 of 3 endpoints (version=v3: 0 match)`,
}

func TestPrint(t *testing.T) {
	ok := contract.TapEvent{Time: uh.Time, Direction: "inbound", Protocol: "HTTP/1.1", Method: "GET", Authority: "productpage:9080", Path: "/", Status: 200, Flags: "-", DurationMS: 12.6, UpstreamHost: "127.0.20.1:9080", Skipped: 7}
	for _, tc := range []struct {
		format string
		ev     contract.TapEvent
		want   string
	}{
		{"", uh, "03:04:05.006 outbound GET    reviews:9080/v3/reviews 503 UH 0.4ms  UH: subset \"v3\" of reviews.default.svc.cluster.local selects 0 of 3 endpoints\n"},
		{"", ok, "# 7 matching requests not shown (the proxy's rate limit for this tap; raise it with --max-rps)\n03:04:05.006 inbound  GET    productpage:9080/ 200 - 13ms → 127.0.20.1:9080\n"},
		{"wide", uh, `03:04:05.006 outbound GET    reviews:9080/v3/reviews 503 UH 0.4ms route=v3 cluster=outbound|9080|v3|reviews.default.svc.cluster.local curl→- id=r1 error="UH: subset \"v3\" of reviews.default.svc.cluster.local selects 0 of 3 endpoints (version=v3: 0 match)"` + "\n"},
	} {
		var b bytes.Buffer
		if err := (&Printer{W: &b, Format: tc.format}).Print(tc.ev); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("-o %q:\n got %q\nwant %q", tc.format, b.String(), tc.want)
		}
	}
	var b bytes.Buffer
	_ = (&Printer{W: &b, Format: "json"}).Print(uh)
	if !strings.HasPrefix(b.String(), `{"time":"2026-01-02T03:04:05.006`) || !strings.Contains(b.String(), `"flags":"UH"`) {
		t.Errorf("-o json: %s", b.String())
	}
	if err := CheckFormat("yaml"); err == nil || !strings.Contains(err.Error(), `-o "yaml": want wide or json`) {
		t.Errorf("CheckFormat(yaml) = %v", err)
	}
}

func TestTop(t *testing.T) {
	top := NewTop()
	for i := range 100 {
		top.Add(contract.TapEvent{Method: "GET", Path: "/productpage?u=" + string(rune('a'+i%3)), Protocol: "HTTP/1.1", Status: 200, Flags: "-", DurationMS: float64(i + 1)})
	}
	for range 3 {
		top.Add(uh)
	}
	top.Add(contract.TapEvent{Direction: "outbound", Flags: "-", DurationMS: 5}) // a TCP connection: no status, not a failure
	var b bytes.Buffer
	if err := top.Write(&b, 0); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"METHOD  PATH          COUNT  SUCCESS  P50    P99    FLAGS  LAST ERROR",
		"GET     /productpage  100    100.0%   50ms   99ms   -      -",
		"GET     /v3/reviews   3      0.0%     0.4ms  0.4ms  UH:3   UH: subset \"v3\" of reviews.default.svc.cluster.local selects 0 of 3 endpoints",
		"-       -             1      100.0%   5.0ms  5.0ms  -      -",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("top:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
	b.Reset()
	_ = top.Write(&b, 1)
	if strings.Count(b.String(), "\n") != 2 {
		t.Errorf("--rows 1:\n%s", b.String())
	}
}

func TestRead(t *testing.T) {
	var got []string
	err := Read(strings.NewReader("{\"path\":\"/a\"}\n\n{\"path\":\"/b\"}\n"), func(ev contract.TapEvent) error {
		got = append(got, ev.Path)
		return nil
	})
	if err != nil || strings.Join(got, ",") != "/a,/b" {
		t.Errorf("Read = %v, %v", got, err)
	}
	err = Read(strings.NewReader("{\"path\":\"/a\"}\nnot json\n"), func(contract.TapEvent) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "tap stream, line 2") {
		t.Errorf("a bad line: %v, want it named", err)
	}
	stop := errors.New("stop")
	if err := Read(strings.NewReader("{}\n{}\n"), func(contract.TapEvent) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("each's error = %v, want it returned", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add("{\"path\":\"/a\",\"status\":503,\"flags\":\"UH\"}\n")
	f.Add("{}\n\n{\"skipped\":3}\n")
	f.Fuzz(func(t *testing.T, s string) {
		top := NewTop()
		_ = Read(strings.NewReader(s), func(ev contract.TapEvent) error {
			top.Add(ev)
			return (&Printer{W: &bytes.Buffer{}}).Print(ev)
		})
		_ = top.Write(&bytes.Buffer{}, 0)
	})
}
