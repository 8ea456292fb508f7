package up

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// waitGroupGone waits until no process of process group pgid is left but zombies (a
// process SIGKILL was sent to may not have run its exit yet on a busy machine), at most d.
func waitGroupGone(pgid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for groupRunning(pgid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// groupRunning reports a process of group pgid that is not a zombie, from /proc.
func groupRunning(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := []byte(" " + strconv.Itoa(pgid) + " ")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ...": after the last ')' come state, ppid, pgrp.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || i+4 >= len(data) || data[i+2] == 'Z' || data[i+2] == 'X' {
			continue
		}
		rest := data[i+4:] // "ppid pgrp ..."
		if j := bytes.IndexByte(rest, ' '); j >= 0 && bytes.HasPrefix(rest[j:], want) {
			return true
		}
	}
	return false
}
