//go:build linux

package footprint

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Page-by-page faults. On a fault in a file mapping the kernel maps, besides the page
// touched, every page of the 64 KiB around it that the page cache holds ("fault-around").
// For the executable that is most of them, so each touch of a scattered table (a type
// descriptor, a function's pclntab entry that the GC reads while scanning a stack) keeps
// 16 pages resident. The kernel skips fault-around, and maps one page per fault, in a
// mapping registered with a userfaultfd (mm/memory.c: uffd_disable_fault_around, and
// finish_fault's single page "to avoid inflating the RSS").
//
// A userfaultfd in write-protect mode with asynchronous resolution (Linux 6.7) may
// register any private mapping, a file's included. Nothing is ever write-protected and no
// handler reads the descriptor: the registration exists only for its effect on
// fault-around. The descriptor stays open for the life of the process; closing it would
// unregister the mappings.

// userfaultfd(2) and ioctl_userfaultfd(2) values (linux/userfaultfd.h).
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

var pageByPage struct {
	sync.Mutex
	fd  int // -1 until opened
	err error
}

func init() { pageByPage.fd = -1 }

// faultPageByPage registers the mappings so that later faults in them map only the page
// touched. It returns why not where the kernel refuses: no userfaultfd (seccomp,
// a kernel built without it) or none with asynchronous write protection (before 6.7).
func faultPageByPage(maps []region) error {
	pageByPage.Lock()
	defer pageByPage.Unlock()
	if pageByPage.fd < 0 && pageByPage.err == nil {
		pageByPage.fd, pageByPage.err = openAsyncWPFD()
	}
	if pageByPage.err != nil {
		return pageByPage.err
	}
	for _, m := range maps {
		// Registering a mapping this descriptor already holds succeeds and changes nothing.
		arg := uffdioRegisterArg{start: uint64(m.start), length: uint64(m.end - m.start), mode: uffdRegisterModeWP}
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(pageByPage.fd), uffdioRegister, uintptr(unsafe.Pointer(&arg))); errno != 0 { //nolint:gosec // the argument struct, as ioctl_userfaultfd(2) lays it out
			return fmt.Errorf("userfaultfd register %#x-%#x: %w", m.start, m.end, errno)
		}
	}
	return nil
}

// openAsyncWPFD opens a userfaultfd with asynchronous write protection.
func openAsyncWPFD() (int, error) {
	fd, _, errno := syscall.Syscall(unix.SYS_USERFAULTFD, uintptr(syscall.O_CLOEXEC|syscall.O_NONBLOCK|uffdUserModeOnly), 0, 0)
	if errno != 0 {
		return -1, fmt.Errorf("userfaultfd: %w (not allowed here, or not in this kernel)", errno)
	}
	api := uffdioAPIArg{api: uffdAPI, features: uffdFeatureWPAsync}
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, uffdioAPI, uintptr(unsafe.Pointer(&api))); errno != 0 { //nolint:gosec // the argument struct, as ioctl_userfaultfd(2) lays it out
		_ = syscall.Close(int(fd))
		if errors.Is(errno, syscall.EINVAL) {
			return -1, fmt.Errorf("userfaultfd: no asynchronous write protection in this kernel (Linux 6.7 or later): %w", errno)
		}
		return -1, fmt.Errorf("userfaultfd API handshake: %w", errno)
	}
	return int(fd), nil
}
