package testutil

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects output written from several goroutines (a logger, a child process)
// and lets a test wait for a line. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Lines is everything written so far, split into lines (without the final empty one).
func (b *Buffer) Lines() []string {
	s := strings.TrimRight(b.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Reset forgets what was written.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

// WaitFor waits until the output contains s, failing the test (with the output) if it
// does not within the bound.
func (b *Buffer) WaitFor(t testing.TB, s string, within time.Duration) {
	t.Helper()
	EventuallyWhy(t, within, "output containing "+s, func() (bool, string) {
		out := b.String()
		return strings.Contains(out, s), "output so far:\n" + out
	})
}
