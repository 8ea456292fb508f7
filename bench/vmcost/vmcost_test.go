//go:build linux

// Package vmcost measures two costs of the machine the benchmarks run on that decide how
// much a proxy's user-mode time follows its instruction count: a system call that does
// nothing (getppid), and touching pages of memory after one. Where the kernel isolates
// its page tables (PTI) on a CPU without PCID, every system call empties the TLB, and
// each page the code touches afterwards costs a page walk; a proxy makes about five calls
// per request. Not a test: `go test -run '^$' -bench . ./bench/vmcost/`, figures in
// bench/RESULTS.md.
package vmcost

import (
	"fmt"
	"syscall"
	"testing"
)

// mem spans more pages than a request touches; touch reads one byte of each of its
// first n pages, at a different offset in each (no two in the same cache set).
var mem = make([]byte, 1024*4096)

var sink byte

func touch(n int) {
	var s byte
	for i := range n {
		s += mem[i*4096+i*64%4096]
	}
	sink = s
}

// BenchmarkSyscall is a system call that does nothing, as a raw call (no scheduler
// bookkeeping, as the data plane's socket calls).
func BenchmarkSyscall(b *testing.B) {
	for b.Loop() {
		_, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
}

// BenchmarkPages touches n pages after a system call ("after-call") and without one
// ("no-call"): the difference over n is what a page costs once a call has run.
func BenchmarkPages(b *testing.B) {
	for _, n := range []int{50, 100, 200, 400} {
		b.Run(fmt.Sprintf("after-call/%d", n), func(b *testing.B) {
			for b.Loop() {
				_, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
				touch(n)
			}
		})
		b.Run(fmt.Sprintf("no-call/%d", n), func(b *testing.B) {
			for b.Loop() {
				touch(n)
			}
		})
	}
}
