package meshtest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// The mesh a test package shares: a test package whose tests only read one mesh starts it
// once, on the first test that asks, and stops it after the last test.
var shared testutil.PackageShared[*sharedMesh]

type sharedMesh struct {
	tb *packageTB
	m  *Mesh // nil: it did not start
}

// SharedMain lets a test package share one mesh between its tests:
//
//	func TestMain(m *testing.M) { os.Exit(meshtest.SharedMain(m).Run()) }
//
// Tests then get the mesh with Shared. After the tests, what went wrong in the mesh
// outside a test (a sidecar that stopped with an error, a slow stop) fails the run; when
// a test failed, the end of the mesh's logs is printed.
func SharedMain(m *testing.M) testutil.Runner {
	return shared.Main(m, func(s *sharedMesh, code int) int {
		s.tb.cleanup()
		if errs := s.tb.errors(); errs != "" {
			fmt.Fprintf(os.Stderr, "meshtest: the shared mesh:\n%s", errs)
			code = 1
		}
		if code != 0 && s.m != nil {
			lines := s.m.Logs.Lines()
			fmt.Fprintf(os.Stderr, "meshtest: tests failed; the shared mesh's logs end:\n%s\n", strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		return code
	})
}

// Shared returns the package's mesh, running start on the first call. start gets a
// testing.TB that lives as long as the package's tests (its cleanups run after the last
// test, its failures fail the run); it starts the mesh with StartWith or Start and may
// wait for more than the sidecars' readiness. A start that failed fails every test that
// asks. The package's TestMain must use SharedMain.
func Shared(t testing.TB, start func(t testing.TB) *Mesh) *Mesh {
	t.Helper()
	s, _ := shared.Get(t, "meshtest.SharedMain", func() (*sharedMesh, error) {
		s := &sharedMesh{tb: &packageTB{name: t.Name()}}
		done := make(chan struct{})
		go func() { // its own goroutine: a Fatal in start ends it, not the test
			defer close(done)
			s.m = start(s.tb)
		}()
		<-done
		return s, nil
	})
	if s.m == nil {
		t.Fatalf("the shared mesh did not start:\n%s", s.tb.errors())
	}
	return s.m
}

// packageTB is the testing.TB a shared mesh lives with: from its start to the end of the
// package's tests. It implements what starting and running a mesh uses; the embedded
// testing.TB is nil, so anything else panics.
type packageTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (p *packageTB) Helper()      {}
func (p *packageTB) Name() string { return p.name + " (the shared mesh)" }

func (p *packageTB) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.errs) > 0
}

func (p *packageTB) Log(args ...any)                 {}
func (p *packageTB) Logf(format string, args ...any) {}

func (p *packageTB) Error(args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Sprintln(args...))
}

func (p *packageTB) Errorf(format string, args ...any) { p.Error(fmt.Sprintf(format, args...)) }

// Fatal records the failure and ends the calling goroutine, as testing's Fatal does.
func (p *packageTB) Fatal(args ...any) {
	p.Error(args...)
	runtime.Goexit()
}

func (p *packageTB) Fatalf(format string, args ...any) { p.Fatal(fmt.Sprintf(format, args...)) }
func (p *packageTB) FailNow()                          { p.Fatal("FailNow") }
func (p *packageTB) Skip(args ...any)                  { p.Fatal(append([]any{"skipped:"}, args...)...) }
func (p *packageTB) Skipf(format string, args ...any)  { p.Skip(fmt.Sprintf(format, args...)) }

func (p *packageTB) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// TempDir is a new directory removed after the package's tests.
func (p *packageTB) TempDir() string {
	d, err := os.MkdirTemp("", "meshtest-shared-")
	if err != nil {
		p.Fatal(err)
	}
	p.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

// cleanup runs the cleanups, last registered first.
func (p *packageTB) cleanup() {
	p.mu.Lock()
	fs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

func (p *packageTB) errors() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.errs, "")
}
