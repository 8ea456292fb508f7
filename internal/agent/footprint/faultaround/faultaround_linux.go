//go:build linux

// Package faultaround turns off the kernel's fault-around for the executable's read-only
// mappings of a sidecar or gateway process, from the process's start on, so that each page
// fault there maps the page touched alone. It sits under internal/agent/footprint, which
// calls Off again for the mappings it releases; nothing on the request path calls it.
//
// On a fault in a file mapping the kernel maps, besides the page touched, every page of the
// 64 KiB around it that the page cache holds, or on Linux 6.18 the whole large folio of the
// page cache where it fits the page table. For the executable that is most of them, so
// each touch of a scattered table (a type descriptor, a function's pclntab entry that the
// GC reads while scanning a stack) keeps 16 pages or more resident. The kernel skips
// fault-around in a mapping registered with a userfaultfd (mm/memory.c:
// uffd_disable_fault_around; finish_fault then maps a single page "to avoid inflating the
// RSS").
//
// A userfaultfd in write-protect mode with asynchronous resolution (Linux 6.7) may register
// any private mapping, a file's included. Nothing is ever write-protected and no handler
// reads the descriptor: the registration exists only for its effect on fault-around. The
// descriptor stays open for the life of the process; closing it would unregister the
// mappings.
//
// The package's init registers the mappings when the process is `lucid sidecar` or `lucid
// gateway` (without --keep-startup-pages), before the packages that build the large
// protobuf and Kubernetes tables initialise: it imports nothing that imports them, and
// sorts before them, which is the order Go initialises packages in.
package faultaround

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Range is one mapping, [Start, End).
type Range struct{ Start, End uintptr }

// userfaultfd(2) and ioctl_userfaultfd(2) values (linux/userfaultfd.h); the ioctl numbers
// are the same on amd64 and arm64.
const (
	uffdUserModeOnly   = 1 // only faults in user mode: allowed without privilege
	uffdAPI            = 0xAA
	uffdFeatureWPAsync = 1 << 15
	uffdRegisterModeWP = 1 << 1
	uffdioAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }

type uffdioRegisterArg struct{ start, length, mode, ioctls uint64 }

var state struct {
	sync.Mutex
	opened bool
	fd     int
	err    error // a refusal that every later attempt would meet too
}

// Error is why fault-around could not be turned off.
type Error struct {
	Op    string
	Errno syscall.Errno
	Hint  string
}

func (e *Error) Error() string {
	s := e.Op + ": " + e.Errno.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Errno }

// Off registers the ranges so that later faults in them map only the page touched. It
// returns why not where the kernel refuses: no userfaultfd (seccomp, a kernel built
// without it) or none with asynchronous write protection (before Linux 6.7 on amd64, 6.10
// on arm64). Registering a range again changes nothing.
func Off(ranges []Range) error {
	state.Lock()
	defer state.Unlock()
	if state.err != nil {
		return state.err
	}
	if !state.opened {
		fd, err := openAsyncWP()
		if err != nil {
			// A refusal is kept; a shortage (EMFILE, ENFILE, ENOMEM) is tried again
			// on the next call.
			if errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EPERM) ||
				errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EINVAL) {
				state.err = err
			}
			return err
		}
		state.opened, state.fd = true, fd
	}
	for _, r := range ranges {
		arg := uffdioRegisterArg{start: uint64(r.Start), length: uint64(r.End - r.Start), mode: uffdRegisterModeWP}
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(state.fd), uffdioRegister, uintptr(unsafe.Pointer(&arg))); errno != 0 { //nolint:gosec // the argument struct, as ioctl_userfaultfd(2) lays it out
			return &Error{Op: "userfaultfd register " + hex(r.Start) + "-" + hex(r.End), Errno: errno}
		}
	}
	return nil
}

// openAsyncWP opens a userfaultfd with asynchronous write protection.
func openAsyncWP() (int, error) {
	fd, _, errno := syscall.Syscall(unix.SYS_USERFAULTFD, uintptr(syscall.O_CLOEXEC|syscall.O_NONBLOCK|uffdUserModeOnly), 0, 0)
	if errno != 0 {
		return -1, &Error{Op: "userfaultfd", Errno: errno, Hint: "not allowed here, or not in this kernel"}
	}
	api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, uffdioAPI, uintptr(unsafe.Pointer(&api))); errno != 0 { //nolint:gosec // the argument struct, as ioctl_userfaultfd(2) lays it out
		_ = syscall.Close(int(fd))
		if errors.Is(errno, syscall.EINVAL) {
			return -1, &Error{Op: "userfaultfd", Errno: errno, Hint: "no asynchronous write protection in this kernel: Linux 6.7 or later on amd64, 6.10 on arm64, with CONFIG_PTE_MARKER_UFFD_WP"}
		}
		return -1, &Error{Op: "userfaultfd API handshake", Errno: errno}
	}
	return int(fd), nil
}

func hex(v uintptr) string { return "0x" + strconv.FormatUint(uint64(v), 16) }

func init() {
	if proxyProcess(os.Args) {
		if r, err := executable(); err == nil {
			_ = Off(r) // footprint reports the outcome when it releases the pages
		}
	}
}

// proxyProcess reports `lucid sidecar` and `lucid gateway`, unless told to keep the
// start-up pages (the memory tuning off).
func proxyProcess(args []string) bool {
	if len(args) < 2 || (args[1] != "sidecar" && args[1] != "gateway") {
		return false
	}
	for _, a := range args[2:] {
		if a == "--" {
			break
		}
		if a == "--keep-startup-pages" || a == "-keep-startup-pages" ||
			strings.HasPrefix(a, "--keep-startup-pages=") && a != "--keep-startup-pages=false" {
			return false
		}
	}
	return true
}

// ExecutableInode is the inode of the process's executable: the mappings of that file in
// /proc/self/maps are the executable's.
func ExecutableInode() (uint64, error) {
	exe, err := os.Stat("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	st, ok := exe.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, errors.New("no inode for /proc/self/exe")
	}
	return st.Ino, nil
}

// executable returns the executable's private read-only mappings, from /proc/self/maps.
func executable() ([]Range, error) {
	ino, err := ExecutableInode()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	return readOnlyOf(string(b), ino), nil
}

// readOnlyOf returns the private read-only mappings of the file with inode ino in
// /proc/PID/maps text.
func readOnlyOf(maps string, ino uint64) []Range {
	var out []Range
	want := strconv.FormatUint(ino, 10)
	for line := range strings.Lines(maps) {
		if r, ok, err := ReadOnlyMapping(strings.Fields(line), want); ok && err == nil {
			out = append(out, r)
		}
	}
	return out
}

// ReadOnlyMapping reads the fields of a mapping's line in /proc/PID/maps or smaps
// ("start-end perms offset dev inode path"): ok when it is a private read-only mapping
// ("r-xp" or "r--p", so nothing in it was written) of the file with inode ino (decimal),
// with its range; err when it is one but its range does not parse.
func ReadOnlyMapping(fields []string, ino string) (r Range, ok bool, err error) {
	if len(fields) < 6 || (fields[1] != "r-xp" && fields[1] != "r--p") || fields[4] != ino {
		return Range{}, false, nil
	}
	lo, hi, _ := strings.Cut(fields[0], "-")
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return Range{}, true, errors.New("bad range " + fields[0])
	}
	return Range{Start: uintptr(start), End: uintptr(end)}, true, nil
}
