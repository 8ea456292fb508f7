//go:build linux

package footprint

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/lucid-mesh/lucid/internal/agent/footprint/faultaround"
)

// ReleaseStartupPages unmaps the resident pages of the executable's read-only mappings
// (code, rodata, pclntab) with madvise(MADV_DONTNEED), so that pages touched only while
// starting (package initialisation of the whole binary, flag parsing, the first
// configuration's decoding) leave the resident set. The pages stay in the page cache; a
// page the process still uses is mapped back by a minor fault on its next touch, and
// where the kernel allows it (package faultaround) that fault maps only the page touched,
// not the 64 KiB around it.
//
// Only private, read-only mappings of the executable file that hold no private copy
// (Anonymous: 0 in smaps, so nothing was relocated or written) are released: for them the
// file is the only content, so dropping the mapping loses nothing.
func ReleaseStartupPages() (Released, error) {
	var r Released
	maps, err := ownMappings()
	if err != nil {
		return r, fmt.Errorf("release startup pages: %w", err)
	}
	// Before the release, so that every page mapped back afterwards comes alone.
	ranges := make([]faultaround.Range, len(maps))
	for i, m := range maps {
		ranges[i] = faultaround.Range{Start: m.start, End: m.end}
	}
	r.FaultAround = faultaround.Off(ranges)
	for _, m := range maps {
		// Read-only data (rodata, pclntab) first gets no huge pages: where the page cache
		// holds the file in large folios (ext4 and others on recent kernels) one touch
		// would map a whole 2 MiB folio again, and the GC's stack scans touch the
		// metadata of each function on a stack, scattered over 20 MiB. Code keeps them:
		// the hot code is dense, and huge pages save iTLB misses on every request.
		// It is also read at random (MADV_RANDOM): a fault that misses the page cache
		// reads the page touched, without readahead (pclntab resident at h2c load about
		// 7 MB → 5 MB when measured). Neither stops the kernel's fault-around (the cached
		// pages of the 64 KiB around each fault); faultaround does, where allowed.
		// Hints: where one is refused (no transparent huge pages: EINVAL; a sandbox),
		// the release goes ahead without it.
		if !m.exec {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_NOHUGEPAGE)
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_RANDOM)
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); errno != 0 {
			return r, fmt.Errorf("release startup pages: madvise %#x-%#x: %w", m.start, m.end, errno)
		}
		r.ResidentKiB += m.rssKiB
	}
	return r, nil
}

// ownMappings returns the executable's releasable mappings, from /proc/self/smaps.
func ownMappings() ([]region, error) {
	ino, err := faultaround.ExecutableInode()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	maps, err := readOwnMappings(f, ino)
	if err != nil {
		return nil, fmt.Errorf("/proc/self/smaps: %w", err)
	}
	return maps, nil
}

// region is one releasable mapping.
type region struct {
	start, end uintptr
	rssKiB     int64
	exec       bool // code ("r-xp")
}

// readOwnMappings returns the read-only private mappings of the file with inode ino that
// have no anonymous (copied-on-write) pages, from smaps text.
func readOwnMappings(r io.Reader, ino uint64) ([]region, error) {
	var (
		out  []region
		cur  *region
		anon int64
	)
	flush := func() {
		if cur != nil && anon == 0 {
			out = append(out, *cur)
		}
		cur, anon = nil, 0
	}
	want := strconv.FormatUint(ino, 10)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if isMappingHeader(fields) {
			flush()
			r, ok, err := faultaround.ReadOnlyMapping(fields, want)
			if err != nil {
				return nil, fmt.Errorf("bad mapping line %q", line)
			}
			if ok {
				cur = &region{start: r.Start, end: r.End, exec: fields[1][2] == 'x'}
			}
			continue
		}
		if cur == nil || len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "Rss:":
			cur.rssKiB, _ = strconv.ParseInt(fields[1], 10, 64)
		case "Anonymous:":
			anon, _ = strconv.ParseInt(fields[1], 10, 64)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// isMappingHeader reports a smaps mapping line ("start-end perms offset dev inode [path]")
// rather than a "Key: value" line.
func isMappingHeader(fields []string) bool {
	return len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") && strings.Contains(fields[0], "-")
}
