//go:build linux && !386

// linux/386 has no recvfrom/sendto/sendmsg system calls of their own (socketcall
// multiplexes them): there sockio_other.go applies and connections go through net.

package sockio

import (
	"io"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	supported = true
	msgPeek   = syscall.MSG_PEEK
)

var eof = io.EOF

// recv is recvfrom(2) with MSG_DONTWAIT, outside the scheduler's syscall bookkeeping.
func recv(fd uintptr, p []byte, flags int) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	// The pointer stays valid: RawSyscall6 keeps converted pointers alive for the call.
	r, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), //nolint:gosec // see above
		uintptr(flags|syscall.MSG_DONTWAIT), 0, 0)
	return int(r), errno
}

// shutdown is shutdown(2) of both directions.
func shutdown(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR) }

// maxIov is the most buffers one sendmsg(2) takes here (the kernel's limit is 1024; the
// data plane writes at most a head, a body and a trailer at once).
const maxIov = 16

// vecScratch is a connection's iovec array and message header for sendmsg(2), kept so
// that a write allocates nothing.
type vecScratch struct {
	iov [maxIov]unix.Iovec
	msg unix.Msghdr
}

// send writes the first buffers of bufs (none of them empty at the front) with one
// sendmsg(2), or sendto(2) when there is one.
func (v *vecScratch) send(fd uintptr, bufs [][]byte) (int, syscall.Errno) {
	k := 0
	for _, b := range bufs {
		if k == maxIov {
			break
		}
		if len(b) == 0 {
			continue
		}
		v.iov[k].Base = &b[0]
		v.iov[k].SetLen(len(b))
		k++
	}
	if k == 1 { // sendto: the kernel skips the message header and iovec copies
		r, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(v.iov[0].Base)), uintptr(v.iov[0].Len), //nolint:gosec // as below
			syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
		return int(r), errno
	}
	v.msg.Iov = &v.iov[0]
	v.msg.SetIovlen(k)
	// msg and iov live in the heap with the connection; the buffers are referenced from iov.
	r, _, errno := syscall.RawSyscall6(syscall.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&v.msg)), //nolint:gosec // see above
		syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0, 0)
	return int(r), errno
}

// clear drops the buffers' pointers so that the scratch keeps nothing alive.
func (v *vecScratch) clear() {
	for i := range v.iov {
		if v.iov[i].Base == nil {
			break
		}
		v.iov[i] = unix.Iovec{}
	}
	v.msg.Iov = nil
}
