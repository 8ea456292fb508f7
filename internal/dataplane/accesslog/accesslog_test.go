package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
	"github.com/lucid-mesh/lucid/internal/dataplane/streaminfo"
)

func fullInfo() *streaminfo.Info {
	return &streaminfo.Info{
		Start:                          time.Date(2026, 11, 21, 11, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		Duration:                       42*time.Millisecond + 900*time.Microsecond,
		Method:                         "GET",
		Path:                           "/reviews/0",
		Protocol:                       "HTTP/1.1",
		Authority:                      "reviews:9080",
		UserAgent:                      "curl/8.5.0",
		RequestID:                      "7c8f4b1e-0d7a-4c9e-9d3e-2f5a1b6c7d8e",
		ForwardedFor:                   "127.0.0.9",
		BytesReceived:                  0,
		ResponseCode:                   200,
		ResponseCodeDetails:            "via_upstream",
		BytesSent:                      358,
		UpstreamServiceTime:            41 * time.Millisecond,
		UpstreamHost:                   "127.0.1.2:9080",
		UpstreamCluster:                "outbound|9080|v1|reviews.default.svc.cluster.local",
		UpstreamLocalAddress:           "127.0.1.1:53422",
		DownstreamLocalAddress:         netip.MustParseAddrPort("127.0.1.1:15001"),
		DownstreamRemoteAddress:        netip.MustParseAddrPort("127.0.1.1:40112"),
		RouteName:                      "default",
		UpstreamTransportFailureReason: "",
	}
}

func TestFormatText(t *testing.T) {
	uh := fullInfo()
	uh.ResponseCode = 503
	uh.Flags = streaminfo.NoHealthyUpstream
	uh.ResponseCodeDetails = "no_healthy_upstream"
	uh.BytesSent = 19
	uh.UpstreamHost = ""
	uh.UpstreamServiceTime = -1
	uh.UpstreamLocalAddress = ""
	uh.LucidError = `UH: subset "v1" of reviews.default.svc.cluster.local selects 0 of 2 endpoints`
	uh.Notes = []string{"attempts=1"}

	retried := fullInfo()
	retried.Flags = streaminfo.UpstreamConnectionFailure | streaminfo.UpstreamRetryLimitExceeded
	retried.Notes = []string{"reused-conn-retry", "line\nbreak"}

	tests := []struct {
		name string
		info *streaminfo.Info
		want string
	}{
		{
			name: "full",
			info: fullInfo(),
			want: `[2026-11-21T10:00:00.123Z] "GET /reviews/0 HTTP/1.1" 200 - via_upstream - "-" 0 358 42 41 "127.0.0.9" "curl/8.5.0" "7c8f4b1e-0d7a-4c9e-9d3e-2f5a1b6c7d8e" "reviews:9080" "127.0.1.2:9080" outbound|9080|v1|reviews.default.svc.cluster.local 127.0.1.1:53422 127.0.1.1:15001 127.0.1.1:40112 - default` + "\n",
		},
		{
			name: "minimal",
			info: &streaminfo.Info{},
			want: `[-] "- - -" 0 - - - "-" 0 0 0 - "-" "-" "-" "-" "-" - - - - - -` + "\n",
		},
		{
			name: "local reply with lucid error",
			info: uh,
			want: `[2026-11-21T10:00:00.123Z] "GET /reviews/0 HTTP/1.1" 503 UH no_healthy_upstream - "-" 0 19 42 - "127.0.0.9" "curl/8.5.0" "7c8f4b1e-0d7a-4c9e-9d3e-2f5a1b6c7d8e" "reviews:9080" "-" outbound|9080|v1|reviews.default.svc.cluster.local - 127.0.1.1:15001 127.0.1.1:40112 - default "lucid=UH: subset \"v1\" of reviews.default.svc.cluster.local selects 0 of 2 endpoints; attempts=1"` + "\n",
		},
		{
			name: "notes only, flags joined",
			info: retried,
			want: `[2026-11-21T10:00:00.123Z] "GET /reviews/0 HTTP/1.1" 200 UF,URX via_upstream - "-" 0 358 42 41 "127.0.0.9" "curl/8.5.0" "7c8f4b1e-0d7a-4c9e-9d3e-2f5a1b6c7d8e" "reviews:9080" "127.0.1.2:9080" outbound|9080|v1|reviews.default.svc.cluster.local 127.0.1.1:53422 127.0.1.1:15001 127.0.1.1:40112 - default "lucid=reused-conn-retry; line\nbreak"` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FormatText(tc.info)
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if strings.Count(got, "\n") != 1 {
				t.Errorf("line has %d newlines", strings.Count(got, "\n"))
			}
		})
	}
}

func TestFormatJSON(t *testing.T) {
	in := fullInfo()
	in.LucidError = "UF: connect refused"
	in.Notes = []string{"reused-conn-retry"}
	line := FormatJSON(in)
	if !strings.HasSuffix(line, "}\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("not one JSON line: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	istio := []string{"authority", "bytes_received", "bytes_sent", "connection_termination_details",
		"downstream_local_address", "downstream_remote_address", "duration", "method", "path",
		"protocol", "request_id", "requested_server_name", "response_code", "response_code_details",
		"response_flags", "route_name", "start_time", "upstream_cluster", "upstream_host",
		"upstream_local_address", "upstream_service_time", "upstream_transport_failure_reason",
		"user_agent", "x_forwarded_for"}
	want := append(slices.Clone(istio), "lucid_error", "lucid_notes")
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("keys = %v\nwant %v", keys, want)
	}
	checks := map[string]any{
		"response_code":             float64(200),
		"bytes_sent":                float64(358),
		"duration":                  float64(42),
		"start_time":                "2026-11-21T10:00:00.123Z",
		"upstream_service_time":     "41",
		"response_flags":            "-",
		"requested_server_name":     nil,
		"upstream_cluster":          "outbound|9080|v1|reviews.default.svc.cluster.local",
		"lucid_error":               "UF: connect refused",
		"downstream_remote_address": "127.0.1.1:40112",
	}
	for k, v := range checks {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	if notes, _ := m["lucid_notes"].([]any); len(notes) != 1 || notes[0] != "reused-conn-retry" {
		t.Errorf("lucid_notes = %#v", m["lucid_notes"])
	}

	// Without Lucid details only Istio's keys appear.
	m = nil
	if err := json.Unmarshal([]byte(FormatJSON(&streaminfo.Info{})), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != len(istio) {
		t.Errorf("minimal JSON has %d keys, want %d", len(m), len(istio))
	}
}

func TestLoggerConcurrentLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Text)
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				l.Log(fullInfo())
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil { // writes what is still buffered
		t.Fatal(err)
	}
	want := FormatText(fullInfo())
	lines := strings.SplitAfter(buf.String(), "\n")
	lines = lines[:len(lines)-1]
	if len(lines) != workers*per {
		t.Fatalf("%d lines, want %d", len(lines), workers*per)
	}
	for i, line := range lines {
		if line != want {
			t.Fatalf("line %d = %q", i, line)
		}
	}
	l.Log(fullInfo())
	l.Flush()
	if len(strings.SplitAfter(buf.String(), "\n"))-1 != workers*per {
		t.Error("Log after Close wrote a line")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestLoggerCountsWriteFailures(t *testing.T) {
	l := New(failWriter{}, JSON)
	l.Log(fullInfo())
	l.Log(fullInfo())
	_ = l.Close()
	if l.Failed() != 2 {
		t.Errorf("Failed() = %d, want 2", l.Failed())
	}
}

// gateWriter records its writes; the first one waits until release is closed.
type gateWriter struct {
	entered chan struct{} // closed when the first Write starts
	release chan struct{}
	writes  chan string
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}), release: make(chan struct{}), writes: make(chan string, 100)}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	select {
	case <-g.entered:
	default:
		close(g.entered)
		<-g.release
	}
	g.writes <- string(p)
	return len(p), nil
}

func (g *gateWriter) next(t *testing.T) string {
	t.Helper()
	select {
	case w := <-g.writes:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("no write within 10s")
		return ""
	}
}

// A line is written without Close, and the lines logged while a write is under way go
// out together in the next one.
func TestLinesAreWrittenSoonAndTogether(t *testing.T) {
	g := newGateWriter()
	l := New(g, Text)
	line := FormatText(fullInfo())
	l.Log(fullInfo()) // alone: its flush starts at once
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first line was not written within 10s (nobody called Flush or Close)")
	}
	const more = 50
	for range more {
		l.Log(fullInfo())
	}
	close(g.release)
	if w := g.next(t); w != line {
		t.Fatalf("first write = %q, want the first line", w)
	}
	if w := g.next(t); w != strings.Repeat(line, more) {
		t.Fatalf("second write has %d lines, want all %d logged meanwhile", strings.Count(w, "\n"), more)
	}
	_ = l.Close()
	select {
	case w := <-g.writes:
		t.Fatalf("unexpected third write %q", w)
	default:
	}
}

// A logger that nobody flushes still writes once its buffer is full, from the request
// that filled it.
func TestFullBufferIsWrittenByTheLogger(t *testing.T) {
	g := newGateWriter()
	close(g.release)
	l := New(g, JSON)
	l.mu.Lock()
	l.kicked = true // as if a flush were on its way that never comes
	l.mu.Unlock()
	line := FormatJSON(fullInfo())
	n := flushAt/len(line) + 1
	for range n {
		l.Log(fullInfo())
	}
	if w := g.next(t); w != strings.Repeat(line, n) {
		t.Fatalf("write has %d lines, want %d", strings.Count(w, "\n"), n)
	}
}

// Formatting Istio's TEXT and JSON lines, errors and notes included, and queueing them
// allocates nothing.
func TestLogAllocations(t *testing.T) {
	in := fullInfo()
	in.Flags = streaminfo.UpstreamConnectionFailure | streaminfo.UpstreamRetryLimitExceeded
	in.LucidError = `upstream 127.0.1.2:9080 refused the connection`
	in.Notes = []string{"retried twice"}
	for _, f := range []Format{Text, JSON} {
		l := New(io.Discard, f)
		l.Log(in)
		if n := testing.AllocsPerRun(1000, func() { l.Log(in) }); n != 0 {
			t.Errorf("%v: %v allocations per line, want 0", f, n)
		}
		_ = l.Close()
	}
}

func BenchmarkLog(b *testing.B) {
	for _, f := range []Format{Text, JSON} {
		b.Run(f.String(), func(b *testing.B) {
			l := New(io.Discard, f)
			in := fullInfo()
			b.ReportAllocs()
			for b.Loop() {
				l.Log(in)
			}
			_ = l.Close()
		})
	}
}

// Lucid's trailing field is left out when the error and every note are empty.
func TestEmptyNotesAddNoField(t *testing.T) {
	in := fullInfo()
	in.Notes = []string{"", ""}
	if got := FormatText(in); strings.Contains(got, "lucid=") {
		t.Errorf("line with only empty notes: %q", got)
	}
	in.Notes = []string{"", "retried", ""}
	in.LucidError = "upstream reset"
	if got := FormatText(in); !strings.HasSuffix(got, ` "lucid=upstream reset; retried"`+"\n") {
		t.Errorf("line: %q", got)
	}
}

// shortWriter writes the first n bytes it is given, then fails.
type shortWriter struct{ n int }

func (w shortWriter) Write(p []byte) (int, error) { return min(w.n, len(p)), errors.New("disk full") }

// Failed counts lines, whatever their format: a custom text format need not end its lines
// with a newline, and a write that fails part-way loses only the lines it did not finish.
func TestFailedCountsLines(t *testing.T) {
	noNewline := &resource.LogFormat{Text: parts(t, "%RESPONSE_CODE% %REQ(:METHOD)%")} // "200 GET"
	l := New(failWriter{}, Text)
	l.LogWith(fullInfo(), nil, noNewline)
	l.LogWith(fullInfo(), nil, noNewline)
	l.Flush()
	if l.Failed() != 2 {
		t.Errorf("Failed() = %d after two lines without newline were lost, want 2", l.Failed())
	}
	line := FormatText(fullInfo())
	l = New(shortWriter{n: len(line) + 3}, Text) // the first line and 3 bytes of the second
	l.kicked = true                              // no flush of its own: the three lines go in one write
	for range 3 {
		l.Log(fullInfo())
	}
	l.Flush()
	if l.Failed() != 2 {
		t.Errorf("Failed() = %d after a write that finished one line of three, want 2", l.Failed())
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"TEXT": Text, "text": Text, "Json": JSON, "JSON": JSON} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("yaml"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("ParseFormat(yaml) = %v", err)
	}
}

func FuzzFormats(f *testing.F) {
	f.Add("TEXT", "GET", "/a b\"c", `sub "v1"`, "note\n", "\xff\x00")
	f.Fuzz(func(t *testing.T, format, method, path, lucidErr, note, ua string) {
		if fm, err := ParseFormat(format); err == nil && !strings.EqualFold(fm.String(), format) {
			t.Fatalf("ParseFormat(%q) = %v", format, fm)
		}
		in := &streaminfo.Info{Method: method, Path: path, UserAgent: ua, LucidError: lucidErr, Notes: []string{note}}
		var m map[string]any
		line := FormatJSON(in)
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("invalid JSON %q: %v", line, err)
		}
		if lucidErr != "" && string([]rune(lucidErr)) != m["lucid_error"] {
			t.Fatalf("lucid_error = %q, want %q", m["lucid_error"], lucidErr)
		}
		text := FormatText(in)
		// The Lucid field is escaped so it never breaks the line.
		if i := strings.Index(text, ` "lucid=`); i >= 0 && strings.Contains(text[i:len(text)-1], "\n") {
			t.Fatalf("newline inside lucid field: %q", text)
		}
	})
}
