package inspect

import (
	"context"
	"io"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/dataplane/admin"
	"github.com/lucid-mesh/lucid/internal/dataplane/logging"
)

func TestParseLogChange(t *testing.T) {
	for _, c := range []struct {
		in   string
		want *LogChange
		err  string
	}{
		{"debug", &LogChange{All: "debug"}, ""},
		{"http:debug,router:trace", &LogChange{Names: []logging.NameLevel{{Name: "http", Level: logging.Debug}, {Name: "router", Level: logging.Trace}}}, ""},
		{"info, http:warn", &LogChange{All: "info", Names: []logging.NameLevel{{Name: "http", Level: logging.Warning}}}, ""},
		{"", nil, "nothing to change"},
		{"loud", nil, `unrecognized level "loud"`},
		{":debug", nil, "empty logger name"},
	} {
		got, err := ParseLogChange(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseLogChange(%q) = %v, want an error with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseLogChange(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestParseLogListing(t *testing.T) {
	body := "active loggers:\n  http: info\n  router: debug\n  upstream: info\n\n" +
		"pending reverts:\n  router: info at 2026-12-04T09:05:00Z (in 4m59s)\n\n"
	l := ParseLogListing([]byte(body))
	if want := map[string]string{"http": "info", "router": "debug", "upstream": "info"}; !reflect.DeepEqual(l.Levels, want) {
		t.Errorf("levels %v, want %v (the pending section is not a listing)", l.Levels, want)
	}
	if got := l.Restore(); got != "info,router:debug" {
		t.Errorf("Restore() = %q", got)
	}
}

func FuzzParseLogChange(f *testing.F) {
	for _, s := range []string{"debug", "http:debug,router:trace", "info,:x", ",,", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseLogChange(s)
		if err == nil && c.All == "" && len(c.Names) == 0 {
			t.Fatalf("%q: no error and no change", s)
		}
	})
}

func FuzzParseLogListing(f *testing.F) {
	f.Add("active loggers:\n  http: info\n\npending reverts:\n  http: debug at x\n")
	f.Add("  : \n:\n")
	f.Fuzz(func(t *testing.T, s string) {
		_ = ParseLogListing([]byte(s)).Restore()
	})
}

// TestSetLogLevels against a real admin API: a timed change, another on top, and what
// /logging then lists; an unknown logger changes nothing.
func TestSetLogLevels(t *testing.T) {
	srv := httptest.NewServer(admin.New(admin.Options{Logging: logging.NewRegistry(io.Discard, logging.Info, false)}))
	defer srv.Close()
	addr, c := srv.Listener.Addr().String(), &Client{}
	ctx := context.Background()

	ch, _ := ParseLogChange("router:debug")
	before, after, err := c.SetLogLevels(ctx, addr, ch, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if before.Levels["router"] != "info" || after.Levels["router"] != "debug" {
		t.Fatalf("router: before %s after %s", before.Levels["router"], after.Levels["router"])
	}
	ch, _ = ParseLogChange("warning,router:trace")
	if _, after, err = c.SetLogLevels(ctx, addr, ch, time.Minute); err != nil {
		t.Fatal(err)
	}
	text := string(after.Text)
	if after.Levels["router"] != "trace" || after.Levels["http"] != "warning" ||
		!strings.Contains(text, "pending reverts:\n") || !strings.Contains(text, "  http: info at ") ||
		!strings.Contains(text, "  router: debug at ") || !strings.Contains(text, ", then info at ") {
		t.Errorf("after two timed changes:\n%s", text)
	}
	ch, _ = ParseLogChange("nosuch:debug")
	if _, _, err := c.SetLogLevels(ctx, addr, ch, 0); err == nil || err.Error() != "unrecognized logger name: nosuch" {
		t.Errorf("unknown logger: %v", err)
	}
}
