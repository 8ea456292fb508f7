// Package filestamp tells, from a file's stat, whether it is the file read before: the
// config directory's poll reads again only the files that changed (controlplane/config),
// a gateway's certificate files are loaded again at a handshake only when they changed
// (dataplane/proxy), the control plane's local workload tokens likewise (controlplane/ca).
package filestamp

import (
	"io/fs"
	"os"
	"time"
)

// Stamp is what a file's stat says of its content: size, modification and change times,
// and (where the platform has them) inode and device. A file replaced by a rename, or
// rewritten by a tool that restores its modification time, gets another Stamp.
type Stamp struct {
	size    int64
	mod     int64  // modification time, Unix nanoseconds
	changed int64  // the later of the modification and status-change times, Unix nanoseconds
	ino     uint64 // 0 where the platform has none
	dev     uint64
}

// Of is fi's Stamp.
func Of(fi fs.FileInfo) Stamp {
	m := fi.ModTime().UnixNano()
	s := Stamp{size: fi.Size(), mod: m, changed: m}
	sysStamp(fi, &s) // filestamp_*.go
	return s
}

// Stat is the Stamp of the file at path (symbolic links followed).
func Stat(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	return Of(fi), nil
}

// Settled reports whether the file had not changed for d when it was read at readAt. Two
// writes within the clock's granularity can leave the same times behind, so a Stamp
// stands for the content read only when the file had been quiet for a while before that
// read; otherwise read it again next time.
func (s Stamp) Settled(readAt time.Time, d time.Duration) bool {
	return readAt.Sub(time.Unix(0, s.changed)) >= d
}
