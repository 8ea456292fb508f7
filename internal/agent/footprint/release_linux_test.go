//go:build linux

package footprint

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

const smapsSample = `00400000-01563000 r-xp 00000000 fe:00 42                               /usr/bin/lucid
Size:              17804 kB
Rss:               12000 kB
Anonymous:             0 kB
01563000-02acd000 r--p 01163000 fe:00 42                               /usr/bin/lucid
Size:              21928 kB
Rss:                9000 kB
Anonymous:             0 kB
02acd000-02b98000 rw-p 026cd000 fe:00 42                               /usr/bin/lucid
Rss:                 556 kB
Anonymous:           200 kB
02b98000-02ba0000 r--p 02798000 fe:00 42                               /usr/bin/lucid
Rss:                   8 kB
Anonymous:             8 kB
a0000000-a0100000 r--p 00000000 fe:00 77                               /usr/lib/other.so
Rss:                 100 kB
Anonymous:             0 kB
a0200000-a0300000 rw-p 00000000 00:00 0
Rss:                1024 kB
Anonymous:          1024 kB
bfc02000-bfc23000 rw-p 00000000 00:00 0                                  [stack]
Rss:                  20 kB
`

func TestReadOwnMappings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ino  uint64
		want []region
	}{
		{name: "text and rodata of the executable; not data, not a relocated (copied) page, not other files",
			in: smapsSample, ino: 42, want: []region{{0x400000, 0x1563000, 12000, true}, {0x1563000, 0x2acd000, 9000, false}}},
		{name: "another inode", in: smapsSample, ino: 77, want: []region{{0xa0000000, 0xa0100000, 100, false}}},
		{name: "no such file", in: smapsSample, ino: 5, want: nil},
		{name: "empty", in: "", ino: 42, want: nil},
		{name: "executable-and-writable is never released", in: "00400000-00500000 rwxp 00000000 fe:00 42 /x\nRss: 4 kB\nAnonymous: 0 kB\n", ino: 42, want: nil},
		{name: "shared mappings are not ours to drop", in: "00400000-00500000 r--s 00000000 fe:00 42 /x\nRss: 4 kB\n", ino: 42, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readOwnMappings(strings.NewReader(tt.in), tt.ino)
			if err != nil {
				t.Fatalf("readOwnMappings: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("mapping %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestReadOwnMappingsBadLine(t *testing.T) {
	_, err := readOwnMappings(strings.NewReader("zz-00500000 r-xp 00000000 fe:00 42 /x\n"), 42)
	if err == nil || !strings.Contains(err.Error(), `bad mapping line "zz-00500000`) {
		t.Fatalf("err = %v, want one naming the bad line", err)
	}
}

// TestReleaseStartupPages releases this test binary's own pages and checks that its
// code's resident set shrank and that the process still runs (the pages come back from
// the page cache on their next touch).
func TestReleaseStartupPages(t *testing.T) {
	before := exeRSS(t)
	if before["r-xp"] == 0 {
		t.Fatalf("no resident code found for the test binary in /proc/self/smaps")
	}
	r, err := ReleaseStartupPages()
	if err != nil {
		t.Fatalf("ReleaseStartupPages: %v", err)
	}
	after := exeRSS(t)
	if r.ResidentKiB < before["r-xp"] {
		t.Errorf("released %d KiB, want at least the %d KiB of resident code", r.ResidentKiB, before["r-xp"])
	}
	if after["r-xp"] >= before["r-xp"] {
		t.Errorf("resident code %d KiB after the release, was %d KiB", after["r-xp"], before["r-xp"])
	}
	if after["rw-p"] < before["rw-p"] {
		t.Errorf("data mapping shrank to %d KiB from %d KiB: it must never be released", after["rw-p"], before["rw-p"])
	}
	// The code and read-only data still work.
	if got := strconv.Itoa(12345) + strings.Repeat("x", 2); got != "12345xx" {
		t.Fatalf("after the release: %q", got)
	}
}

// A page of the executable touched after the release does not come back as the 2 MiB
// folio the page cache may hold it in, nor with readahead: the released read-only data is
// marked no-huge-page and random-read ("nh", "rr" in smaps). Where the kernel allows
// page-by-page faults, it comes back alone, without its 64 KiB neighbourhood.
func TestReleasedPagesComeBackSmall(t *testing.T) {
	r, err := ReleaseStartupPages()
	if err != nil {
		t.Fatalf("ReleaseStartupPages: %v", err)
	}
	ro := exeMapping(t, "r--p")
	if !strings.Contains(" "+ro.flags+" ", " rr ") {
		t.Errorf("read-only data mapping's VmFlags %q lack rr (random reads: no readahead)", ro.flags)
	}
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage"); err != nil {
		t.Logf("no transparent huge pages here (%v): the no-huge-page mark is not checked", err)
	} else if !strings.Contains(" "+ro.flags+" ", " nh ") {
		t.Errorf("read-only data mapping's VmFlags %q lack nh (no huge pages)", ro.flags)
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	// Four pages 4 MiB apart: each fault maps its neighbourhood, not a huge page; page by
	// page, only itself. The 64 KiB window around each is read from pagemap before and
	// after its touch.
	const touches, window = 4, 16
	page := uintptr(os.Getpagesize())
	before := exeRSS(t)["r--p"]
	newInWindows := 0
	for i := range touches {
		addr := ro.start + uintptr(i+1)*(ro.end-ro.start)/(touches+1)
		win := max(addr&^(window*page-1), ro.start)
		was := testutil.MappedPages(t, win, window)
		if _, err := mem.ReadAt(make([]byte, 1), int64(addr)); err != nil {
			t.Fatalf("reading %#x: %v", addr, err)
		}
		newInWindows += testutil.MappedPages(t, win, window) - was
	}
	grew := exeRSS(t)["r--p"] - before
	t.Logf("%d touches of released read-only data: +%d KiB resident, %d pages newly mapped in their 64 KiB windows", touches, grew, newInWindows)
	if grew > touches*512 {
		t.Errorf("%d touches made %d KiB resident again; want at most %d KiB (no huge pages)", touches, grew, touches*512)
	}
	// The slack is for the runtime's own touches meanwhile (the GC reads pclntab).
	if r.FaultAround != nil {
		t.Logf("faults still map 64 KiB windows here (%v): page-by-page not checked", r.FaultAround)
	} else if newInWindows > touches+2 {
		t.Errorf("%d touches newly mapped %d pages of their 64 KiB windows; want %d (one page each)", touches, newInWindows, touches)
	}
}

// mapping is one of the executable's mappings in /proc/self/smaps.
type mapping struct {
	perms      string
	start, end uintptr
	rssKiB     int64
	flags      string // VmFlags
}

// exeMappings returns the executable's mappings, in address order.
func exeMappings(t *testing.T) []mapping {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var out []mapping
	var cur *mapping
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		switch {
		case isMappingHeader(fields):
			cur = nil
			if len(fields) >= 6 && fields[5] == exe {
				lo, hi, _ := strings.Cut(fields[0], "-")
				s, _ := strconv.ParseUint(lo, 16, 64)
				e, _ := strconv.ParseUint(hi, 16, 64)
				out = append(out, mapping{perms: fields[1], start: uintptr(s), end: uintptr(e)})
				cur = &out[len(out)-1]
			}
		case cur != nil && len(fields) >= 2 && fields[0] == "Rss:":
			cur.rssKiB, _ = strconv.ParseInt(fields[1], 10, 64)
		case cur != nil && len(fields) >= 1 && fields[0] == "VmFlags:":
			cur.flags = strings.Join(fields[1:], " ")
		}
	}
	return out
}

// exeMapping returns the executable's first mapping with permissions perms.
func exeMapping(t *testing.T, perms string) mapping {
	t.Helper()
	for _, m := range exeMappings(t) {
		if m.perms == perms {
			return m
		}
	}
	t.Fatalf("no %s mapping of the executable in /proc/self/smaps", perms)
	return mapping{}
}

// exeRSS returns the Rss in KiB of the executable's mappings by permissions.
func exeRSS(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, m := range exeMappings(t) {
		out[m.perms] += m.rssKiB
	}
	return out
}

func FuzzReadOwnMappings(f *testing.F) {
	f.Add(smapsSample, uint64(42))
	f.Add("00400000-00300000 r-xp 0 fe:00 1 /x\n", uint64(1))
	f.Fuzz(func(t *testing.T, in string, ino uint64) {
		got, err := readOwnMappings(strings.NewReader(in), ino)
		if err != nil {
			return
		}
		for _, r := range got {
			if r.end <= r.start {
				t.Fatalf("region %+v: end not after start", r)
			}
		}
	})
}
