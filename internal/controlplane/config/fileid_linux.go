package config

import (
	"io/fs"
	"syscall"
)

// sysID adds the inode, device and status-change time: a file replaced by a rename, or
// rewritten by a tool that restores its modification time, differs in one of them.
func sysID(fi fs.FileInfo, id *fileID) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	id.ino, id.dev = st.Ino, st.Dev
	if c := st.Ctim.Nano(); c > id.changed {
		id.changed = c
	}
}
