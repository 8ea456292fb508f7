package config

import "io/fs"

// fileID is what DirReader compares to tell that a file is the one it read before.
type fileID struct {
	size    int64
	mod     int64  // modification time, Unix nanoseconds
	changed int64  // the later of the modification and status-change times, Unix nanoseconds
	ino     uint64 // 0 where the platform has none
	dev     uint64
}

// idOf is fi's fileID.
func idOf(fi fs.FileInfo) fileID {
	m := fi.ModTime().UnixNano()
	id := fileID{size: fi.Size(), mod: m, changed: m}
	sysID(fi, &id) // fileid_*.go
	return id
}
