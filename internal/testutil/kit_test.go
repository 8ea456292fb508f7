package testutil

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of stopping the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}
func (r *recorder) Errorf(format string, args ...any) { r.failed = format }

func fails(t *testing.T, f func(tb testing.TB)) bool {
	t.Helper()
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != r {
				panic(p)
			}
		}()
		f(r)
	}()
	return r.failed != ""
}

func TestGolden(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.golden")
	if !fails(t, func(tb testing.TB) { tb.Helper(); Golden(tb, p, []byte("a\n")) }) {
		t.Fatal("a missing golden file passed")
	}
	if err := os.WriteFile(p, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fails(t, func(tb testing.TB) { tb.Helper(); Golden(tb, p, []byte("a\n")) }) {
		t.Fatal("an equal golden file failed")
	}
	if !fails(t, func(tb testing.TB) { tb.Helper(); Golden(tb, p, []byte("b\n")) }) {
		t.Fatal("a different golden file passed")
	}
	*update = true
	defer func() { *update = false }()
	Golden(t, p, []byte("b\n"))
	if b, _ := os.ReadFile(p); string(b) != "b\n" {
		t.Fatalf("-update wrote %q", b)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, time.Second, "third call", func() bool { n++; return n == 3 })
	if !fails(t, func(tb testing.TB) {
		tb.Helper()
		Eventually(tb, 30*time.Millisecond, "never", func() bool { return false })
	}) {
		t.Fatal("a condition that never holds passed")
	}
}

func TestPoll(t *testing.T) {
	n := 0
	if err := Poll(time.Second, func() error {
		if n++; n < 3 {
			return fmt.Errorf("call %d", n)
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, n)
	}
	if err := Poll(30*time.Millisecond, func() error { return errors.New("never") }); err == nil || err.Error() != "never" {
		t.Fatalf("Poll of a condition that never holds = %v, want its last error", err)
	}
}

func TestBufferAndBackend(t *testing.T) {
	var b Buffer
	go func() { _, _ = io.WriteString(&b, "starting\nready\n") }()
	b.WaitFor(t, "ready", time.Second)
	if got := b.Lines(); len(got) != 2 || got[1] != "ready" {
		t.Fatalf("lines %q", got)
	}
	addr := Backend(t, "127.0.0.1:0", Echo("v1"))
	resp, err := http.Get("http://" + addr + "/a?b=c")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("X-Backend") != "v1" || !strings.HasPrefix(string(body), "v1 GET /a?b=c") {
		t.Fatalf("echo: %s %q", resp.Header, body)
	}
	h2c := &http.Transport{Protocols: new(http.Protocols)}
	h2c.Protocols.SetUnencryptedHTTP2(true)
	defer h2c.CloseIdleConnections()
	resp2, err := (&http.Client{Transport: h2c}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("h2c: %v", err)
	}
	resp2.Body.Close()
	if resp2.ProtoMajor != 2 {
		t.Fatalf("h2c request answered over %s", resp2.Proto)
	}
}

// TestPackageSharedStartsOnce: the first Get starts, later ones get its result again
// (its error too).
func TestPackageSharedStartsOnce(t *testing.T) {
	var s PackageShared[int]
	_ = s.Main(nil, func(_, code int) int { return code }) // as a TestMain would, without running it
	starts := 0
	for range 3 {
		v, err := s.Get(t, "x.SharedMain", func() (int, error) { starts++; return 7, nil })
		if v != 7 || err != nil {
			t.Fatalf("Get = %d, %v; want 7, nil", v, err)
		}
	}
	if starts != 1 {
		t.Errorf("%d starts, want 1", starts)
	}

	var failed PackageShared[int]
	_ = failed.Main(nil, func(_, code int) int { return code })
	for range 2 {
		if _, err := failed.Get(t, "x.SharedMain", func() (int, error) { return 0, errors.New("no binaries") }); err == nil || err.Error() != "no binaries" {
			t.Errorf("Get after a failed start: %v, want its error", err)
		}
	}
}
