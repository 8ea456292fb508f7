// Command rssmap shows where a running Go process's resident memory is: per mapping kind
// (the binary's text, read-only data, pclntab, data, bss; anonymous memory: Go heap arenas,
// goroutine stacks and runtime metadata together) and, for the binary's file-backed pages,
// per Go package. It reads /proc/PID/smaps for the mappings and /proc/PID/pagemap for which
// pages of the binary are resident, and the binary's ELF symbol table to name them.
//
// It is a benchmark tool (bench/rss.sh runs it on an idle and a loaded sidecar), not part of
// the mesh: the data plane never imports it.
//
//	rssmap -pid 1234            # the table by mapping and the 25 packages with most resident pages
//	rssmap -pid 1234 -top 0     # by mapping only
//
// Resident pages of the binary are counted once each: a page is attributed to the symbol
// that covers its first byte (or to the section when no symbol does, e.g. inside pclntab).
// The kernel maps file pages already in the page cache around a faulting address
// ("fault-around", 64 KiB by default), so a touched function brings its neighbours in too.
package main

import (
	"bufio"
	"debug/elf"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

const pageSize = 4096

func main() {
	pid := flag.Int("pid", 0, "the process to inspect (required)")
	top := flag.Int("top", 25, "how many packages to list by resident pages of the binary (0: none)")
	flag.Parse()
	if *pid <= 0 {
		fmt.Fprintln(os.Stderr, "rssmap: -pid is required")
		os.Exit(2)
	}
	if err := run(os.Stdout, *pid, *top); err != nil {
		fmt.Fprintln(os.Stderr, "rssmap:", err)
		os.Exit(1)
	}
}

// mapping is one line of /proc/PID/smaps with its Rss.
type mapping struct {
	start, end uint64
	perms      string
	offset     uint64
	path       string
	rssKiB     uint64
	anonKiB    uint64
}

func run(w io.Writer, pid, top int) error {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Errorf("read the process's executable: %w", err)
	}
	maps, err := readSmaps(pid)
	if err != nil {
		return err
	}
	f, err := elf.Open(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Errorf("open %s as ELF: %w", exe, err)
	}
	defer f.Close()

	rows, total := byKind(maps, exe, f)
	fmt.Fprintf(w, "| mapping | size KiB | resident KiB |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %d | %d |\n", r.name, r.sizeKiB, r.rssKiB)
	}
	fmt.Fprintf(w, "| **total (VmRSS)** | | **%d** |\n", total)
	if top <= 0 {
		return nil
	}
	resident, err := residentPages(pid, maps, exe)
	if err != nil {
		return err
	}
	pkgs, err := byPackage(f, resident)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n| package (binary pages) | text KiB | rodata+pclntab KiB | data+bss KiB |\n|---|---|---|---|\n")
	for i, p := range pkgs {
		if i == top {
			break
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d |\n", p.name, p.kib[0], p.kib[1], p.kib[2])
	}
	return nil
}

func readSmaps(pid int) ([]mapping, error) {
	fh, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	defer fh.Close()
	var out []mapping
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && len(fields) >= 5 && !strings.HasSuffix(fields[0], ":") {
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			off, err3 := strconv.ParseUint(fields[2], 16, 64)
			if err := errors.Join(err1, err2, err3); err != nil {
				return nil, fmt.Errorf("smaps line %q: %w", sc.Text(), err)
			}
			m := mapping{start: start, end: end, perms: fields[1], offset: off}
			if len(fields) >= 6 {
				m.path = strings.Join(fields[5:], " ")
			}
			out = append(out, m)
			continue
		}
		if len(out) == 0 || len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(fields[1], 10, 64)
		switch fields[0] {
		case "Rss:":
			out[len(out)-1].rssKiB = v
		case "Anonymous:":
			out[len(out)-1].anonKiB = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read smaps: %w", err)
	}
	return out, nil
}

type kindRow struct {
	name            string
	sizeKiB, rssKiB uint64
}

// byKind sums the mappings' Rss by what they hold. The binary's rw file mapping is .data
// (and .noptrdata); the anonymous mapping right after it is .bss/.noptrbss.
func byKind(maps []mapping, exe string, f *elf.File) ([]kindRow, uint64) {
	bssStart, bssEnd := sectionRange(f, ".bss", ".noptrbss")
	textStart, textEnd := sectionRange(f, ".text")
	order := []string{"binary: text (code)", "binary: rodata + pclntab", "binary: data", "binary: bss",
		"anonymous: Go heap arenas (64 MiB reservations)", "anonymous: other (runtime metadata, stacks off-heap, mcache)", "[stack] and kernel"}
	sum := map[string]*kindRow{}
	for _, n := range order {
		sum[n] = &kindRow{name: n}
	}
	var total uint64
	for _, m := range maps {
		var k string
		switch {
		case m.path == exe && m.start <= textStart && textEnd <= m.end:
			k = order[0]
		case m.path == exe && !strings.Contains(m.perms, "w"):
			k = order[1]
		case m.path == exe:
			k = order[2]
		case m.path == "" && m.start < bssEnd && bssStart < m.end:
			k = order[3]
		case m.path == "" && m.start%(64<<20) == 0 || m.path == "" && isArenaLike(m):
			k = order[4]
		case m.path == "":
			k = order[5]
		default:
			k = order[6]
		}
		sum[k].sizeKiB += (m.end - m.start) / 1024
		sum[k].rssKiB += m.rssKiB
		total += m.rssKiB
	}
	rows := make([]kindRow, 0, len(order))
	for _, n := range order {
		if sum[n].sizeKiB > 0 {
			rows = append(rows, *sum[n])
		}
	}
	return rows, total
}

// isArenaLike reports a read-write anonymous mapping aligned to 4 MiB (Go's heap arenas
// are 64 MiB reservations whose used part is mapped read-write in 4 MiB steps).
func isArenaLike(m mapping) bool {
	return m.perms == "rw-p" && m.start%(4<<20) == 0 && (m.end-m.start)%(4<<20) == 0
}

func sectionRange(f *elf.File, names ...string) (lo, hi uint64) {
	lo = ^uint64(0)
	for _, n := range names {
		if s := f.Section(n); s != nil {
			lo = min(lo, s.Addr)
			hi = max(hi, s.Addr+s.Size)
		}
	}
	return lo, hi
}

// residentPages returns the resident page addresses of the binary's mappings (file-backed
// and its bss), from /proc/PID/pagemap (bit 63: present).
func residentPages(pid int, maps []mapping, exe string) ([]uint64, error) {
	pm, err := os.Open(fmt.Sprintf("/proc/%d/pagemap", pid))
	if err != nil {
		return nil, fmt.Errorf("open pagemap: %w", err)
	}
	defer pm.Close()
	var out []uint64
	var lastExeEnd uint64
	for _, m := range maps {
		ours := m.path == exe || (m.path == "" && m.start == lastExeEnd)
		if m.path == exe {
			lastExeEnd = m.end
		}
		if !ours || m.rssKiB == 0 {
			continue
		}
		n := (m.end - m.start) / pageSize
		buf := make([]byte, 8*n)
		if _, err := pm.ReadAt(buf, int64(m.start/pageSize*8)); err != nil {
			return nil, fmt.Errorf("read pagemap at %#x: %w", m.start, err)
		}
		for i := range n {
			if binary.LittleEndian.Uint64(buf[8*i:])&(1<<63) != 0 {
				out = append(out, m.start+i*pageSize)
			}
		}
	}
	return out, nil
}

type pkgRow struct {
	name string
	kib  [3]uint64 // text, rodata+pclntab, data+bss
}

// byPackage attributes each resident page to the package of the symbol covering it.
func byPackage(f *elf.File, pages []uint64) ([]pkgRow, error) {
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("read the symbol table: %w", err)
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	type sec struct {
		name     string
		lo, hi   uint64
		kindSlot int
	}
	var secs []sec
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Addr == 0 {
			continue
		}
		slot := 1
		switch {
		case s.Flags&elf.SHF_EXECINSTR != 0:
			slot = 0
		case s.Flags&elf.SHF_WRITE != 0:
			slot = 2
		}
		secs = append(secs, sec{s.Name, s.Addr, s.Addr + s.Size, slot})
	}
	rows := map[string]*pkgRow{}
	for _, p := range pages {
		slot, secName := 1, "(outside sections)"
		for _, s := range secs {
			if p < s.hi && s.lo < p+pageSize {
				slot, secName = s.kindSlot, s.name
				break
			}
		}
		name := secName
		// The symbol covering the page's first byte, else the first symbol starting in it.
		i := sort.Search(len(syms), func(i int) bool { return syms[i].Value > p }) - 1
		switch {
		case i >= 0 && syms[i].Value+syms[i].Size > p:
			name = packageOf(syms[i].Name)
		case i+1 < len(syms) && syms[i+1].Value < p+pageSize:
			name = packageOf(syms[i+1].Name)
		}
		if secName == ".gopclntab" || secName == ".typelink" || secName == ".itablink" {
			name = secName
		}
		r := rows[name]
		if r == nil {
			r = &pkgRow{name: name}
			rows[name] = r
		}
		r.kib[slot] += pageSize / 1024
	}
	out := make([]pkgRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].kib, out[j].kib
		if sa, sb := a[0]+a[1]+a[2], b[0]+b[1]+b[2]; sa != sb {
			return sa > sb
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// packageOf returns the Go package (or module prefix) of a symbol name such as
// "github.com/x/y.(*T).M", "type:*github.com/x/y.T" or "go:string.*".
func packageOf(sym string) string {
	s := strings.TrimPrefix(sym, "type:")
	s = strings.TrimLeft(s, "*[]")
	if strings.HasPrefix(s, "go:") || strings.HasPrefix(s, "runtime.") && strings.Contains(s, "..") {
		if i := strings.IndexAny(s, ".*"); i > 0 {
			return s[:i]
		}
		return s
	}
	slash := strings.LastIndex(s, "/")
	if dot := strings.Index(s[slash+1:], "."); dot >= 0 {
		s = s[:slash+1+dot]
	}
	return groupPackage(s)
}

// groupPackage folds a package into its module-ish prefix so the table stays readable.
func groupPackage(p string) string {
	for _, prefix := range []string{"github.com/envoyproxy/go-control-plane", "google.golang.org/grpc",
		"google.golang.org/protobuf", "k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go", "k8s.io/klog",
		"k8s.io/kube-openapi", "istio.io/api", "github.com/prometheus", "golang.org/x/net", "github.com/cncf/xds",
		"google.golang.org/genproto", "sigs.k8s.io", "go.yaml.in", "github.com/lucid-mesh/lucid/internal/"} {
		if strings.HasPrefix(p, prefix) {
			if strings.HasSuffix(prefix, "/") {
				rest := strings.TrimPrefix(p, prefix)
				if i := strings.Index(rest, "/"); i >= 0 {
					rest = rest[:i]
				}
				return prefix + rest
			}
			return prefix + "/..."
		}
	}
	return p
}
