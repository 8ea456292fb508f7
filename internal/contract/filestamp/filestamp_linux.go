package filestamp

import (
	"io/fs"
	"syscall"
)

// sysStamp adds the inode, device and status-change time.
func sysStamp(fi fs.FileInfo, s *Stamp) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	s.ino, s.dev = st.Ino, st.Dev
	if c := st.Ctim.Nano(); c > s.changed {
		s.changed = c
	}
}
