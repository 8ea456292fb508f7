package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want Level
		name string
	}{
		{"trace", Trace, "trace"},
		{"debug", Debug, "debug"},
		{"info", Info, "info"},
		{"warning", Warning, "warning"},
		{"warn", Warning, "warning"},
		{"error", Error, "error"},
		{"critical", Critical, "critical"},
		{"off", Off, "off"},
	}
	for _, tc := range tests {
		got, err := ParseLevel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.name {
			t.Errorf("ParseLevel(%q).String() = %q, want %q", tc.in, got.String(), tc.name)
		}
	}
	for _, bad := range []string{"", "INFO", "verbose", "warn ", "fatal"} {
		if _, err := ParseLevel(bad); !errors.Is(err, ErrUnknownLevel) {
			t.Errorf("ParseLevel(%q) error = %v, want ErrUnknownLevel", bad, err)
		}
	}
}

func TestLevelChangeTakesEffectImmediately(t *testing.T) {
	var buf bytes.Buffer
	r := NewRegistry(&buf, Info, false)
	log := r.Logger("router")

	log.Debug("hidden", "k", "v")
	if buf.Len() != 0 {
		t.Fatalf("debug record written at info level: %q", buf.String())
	}
	if err := r.Set("router", Debug); err != nil {
		t.Fatal(err)
	}
	log.Debug("shown", "k", "v")
	line := buf.String()
	for _, want := range []string{"level=debug", "msg=shown", "component=router", "k=v"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}

	// Other loggers keep their own level.
	buf.Reset()
	r.Logger("http").Debug("other")
	if buf.Len() != 0 {
		t.Errorf("http logger printed debug after router was set: %q", buf.String())
	}

	// Off silences even critical records.
	r.SetAll(Off)
	log.Log(t.Context(), 12, "critical")
	if buf.Len() != 0 {
		t.Errorf("record written with every logger off: %q", buf.String())
	}
}

func TestLevelNamesInOutput(t *testing.T) {
	var buf bytes.Buffer
	r := NewRegistry(&buf, Trace, true)
	log := r.Logger("admin")
	log.Log(t.Context(), -8, "t")
	log.Warn("w")
	log.Log(t.Context(), 12, "c")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if m["component"] != "admin" {
			t.Errorf("component = %v", m["component"])
		}
		got = append(got, m["level"].(string))
	}
	if strings.Join(got, ",") != "trace,warning,critical" {
		t.Errorf("levels = %v", got)
	}
}

func TestSetUnknownAndLevels(t *testing.T) {
	r := NewRegistry(&bytes.Buffer{}, Warning, false)
	err := r.Set("nope", Debug)
	if !errors.Is(err, ErrUnknownLogger) || err.Error() != "unrecognized logger name: nope" {
		t.Fatalf("Set(nope) = %v", err)
	}
	// paths semantics: one bad name changes nothing.
	err = r.SetLevels([]NameLevel{{"http", Debug}, {"bogus", Debug}})
	if !errors.Is(err, ErrUnknownLogger) {
		t.Fatalf("SetLevels = %v", err)
	}
	r.Logger("xds") // a new name joins the list
	if err := r.Set("xds", Error); err != nil {
		t.Fatal(err)
	}
	levels := r.Levels()
	var names []string
	for _, nl := range levels {
		names = append(names, nl.Name)
		want := Warning
		if nl.Name == "xds" {
			want = Error
		}
		if nl.Level != want {
			t.Errorf("%s = %v, want %v", nl.Name, nl.Level, want)
		}
	}
	want := "admin,agent,config,connection,hc,http,http2,main,misc,pool,probes,router,upstream,xds"
	if strings.Join(names, ",") != want {
		t.Errorf("names = %s\nwant    %s", strings.Join(names, ","), want)
	}
}

func FuzzParseLevel(f *testing.F) {
	for _, s := range []string{"trace", "warn", "off", "", "Info"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLevel(s)
		if err != nil {
			return
		}
		// Every accepted name round-trips through String (warn is an alias).
		back, err := ParseLevel(l.String())
		if err != nil || back != l {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, l, l.String(), back, err)
		}
	})
}
