package testutil

import (
	"sync"
	"testing"
)

// PackageShared is something every test of a package shares because it costs seconds to
// start (an API server, a node, a mesh): the first test that asks starts it (a run that
// selects none starts nothing) and the package's TestMain stops it after the last test.
// The zero value is ready; kubetest, kubenode and meshtest keep one each.
type PackageShared[T any] struct {
	mu              sync.Mutex
	inMain, started bool
	v               T
	err             error
}

// Runner is what a SharedMain returns: testing.M's Run, then the stop. It satisfies
// goleak.VerifyTestMain's argument.
type Runner struct{ run func() int }

// Run runs the tests and stops what they shared; it returns the exit code.
func (r Runner) Run() int { return r.run() }

// Main is a SharedMain: the tests run, then stop gets what was started (if anything
// was, without error) and the tests' exit code, and returns the run's.
func (s *PackageShared[T]) Main(m *testing.M, stop func(v T, code int) int) Runner {
	s.mu.Lock()
	s.inMain = true
	s.mu.Unlock()
	return Runner{run: func() int {
		code := m.Run()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.started && s.err == nil {
			code = stop(s.v, code)
		}
		return code
	}}
}

// Get returns the shared thing, running start on the first call (under the lock: tests
// asking meanwhile wait); every later call gets start's result again. Without Main in
// the package's TestMain, nothing would stop it: Get fails the test, telling which
// SharedMain to call.
func (s *PackageShared[T]) Get(t testing.TB, mainName string, start func() (T, error)) (T, error) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inMain {
		t.Fatalf("this needs the package's TestMain to run %s(m), which stops what the tests share", mainName)
	}
	if !s.started {
		s.started = true
		s.v, s.err = start()
	}
	return s.v, s.err
}
