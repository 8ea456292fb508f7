package strslab

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// A string keeps its bytes while later strings are made from the same blocks and the
// caller's buffer is reused, on every goroutine at once.
func TestStringsStayWhatTheyWere(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64)
			var kept []string
			var want []string
			for i := range 3000 {
				buf = buf[:0]
				for j := range 1 + (i*7+g)%60 {
					buf = append(buf, byte('a'+(i+j+g)%26))
				}
				s := String(buf)
				if s != string(buf) {
					t.Errorf("String(%q) = %q", buf, s)
					return
				}
				kept = append(kept, s)
				want = append(want, strings.Clone(string(buf)))
				clear(buf[:cap(buf)]) // the caller reuses its buffer
			}
			for i := range kept {
				if kept[i] != want[i] {
					t.Errorf("string %d changed: %q, was %q", i, kept[i], want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestEmptyAndLong(t *testing.T) {
	if s := String(nil); s != "" {
		t.Fatalf("String(nil) = %q", s)
	}
	long := bytes.Repeat([]byte("x"), MaxLen+1)
	if s := String(long); s != string(long) {
		t.Fatal("a long string lost bytes")
	}
	edge := bytes.Repeat([]byte("y"), MaxLen)
	if s := String(edge); s != string(edge) {
		t.Fatal("a string of MaxLen lost bytes")
	}
}

// Many short strings share an allocation: far fewer than one per string.
func TestShortStringsShareAllocations(t *testing.T) {
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n")
	n := testing.AllocsPerRun(1000, func() { _ = String(head) })
	if raceEnabled {
		t.Skip("sync.Pool drops blocks at random under -race")
	}
	// 68 bytes: about 60 to a block.
	if n != 0 {
		t.Fatalf("%.2f allocations per string, want fewer than one in 50 (AllocsPerRun rounds down to 0)", n)
	}
}

func BenchmarkString(b *testing.B) {
	head := []byte("GET /echo?size=1024 HTTP/1.1\r\nHost: svc:9080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.Run("strslab", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = String(head)
		}
	})
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = string(head)
		}
	})
}

// A Recall gives the string it kept at a place for the same bytes there, and a new copy,
// which it keeps instead, for others; the strings it gave before stay what they were.
func TestRecall(t *testing.T) {
	var r Recall
	buf := []byte("Host: svc")
	first := r.Line(1, buf, 64)
	if again := r.Line(1, []byte("Host: svc"), 64); unsafe.StringData(again) != unsafe.StringData(first) {
		t.Error("the same line at the same place was copied again")
	}
	if other := r.Line(2, []byte("Host: svc"), 64); unsafe.StringData(other) == unsafe.StringData(first) || other != "Host: svc" {
		t.Errorf("another place recalled place 1's string: %q", other)
	}
	copy(buf, "Host: abc")
	if changed := r.Line(1, buf, 64); changed != "Host: abc" || first != "Host: svc" {
		t.Fatalf("changed line %q, first %q", changed, first)
	}
	if shorter := r.Line(1, buf[:6], 64); shorter != "Host: " {
		t.Fatalf("shorter line %q", shorter)
	}
	if empty := r.Line(0, nil, 64); empty != "" || r.Line(RecallLines-1, buf, 64) != "Host: abc" {
		t.Fatal("empty line or last place")
	}
	if long := r.Line(3, bytes.Repeat([]byte{'v'}, 9000), 9100); len(long) != 9000 || r.Line(3, bytes.Repeat([]byte{'v'}, 9000), 9100) != long {
		t.Fatal("a line longer than an arena")
	}
}

// What a Recall keeps lies in one arena of at most twice its head (4 KiB at most, or the
// head when that is larger), however its connection's heads change: a head's lines kept
// from one place to the next never spread over many arenas, and strings given out before
// stay what they were.
func TestRecallKeepsOneArena(t *testing.T) {
	var r Recall
	var given []string
	var want []string
	for req := range 500 {
		head := make([][]byte, RecallLines)
		size := 0
		for i := range head {
			line := "X-Field-" + strconv.Itoa(i) + ": steady value"
			if i == req%RecallLines || i == 0 {
				line = "X-Changing-" + strconv.Itoa(i) + ": " + strconv.Itoa(req*7919)
			}
			head[i] = []byte(line)
			size += len(line) + 2
		}
		lo, hi := uintptr(0), uintptr(0)
		for i, b := range head {
			s := r.Line(i, b, size)
			if s != string(b) {
				t.Fatalf("request %d, line %d: %q, want %q", req, i, s, b)
			}
			if req%50 == 0 {
				given, want = append(given, s), append(want, string(b))
			}
		}
		for _, s := range r.lines {
			if s == "" {
				continue
			}
			p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
			if lo == 0 || p < lo {
				lo = p
			}
			hi = max(hi, p+uintptr(len(s)))
		}
		if span := hi - lo; span > uintptr(max(min(2*size, 4<<10), size+128)) {
			t.Fatalf("request %d: the lines kept span %d bytes, more than one arena", req, span)
		}
	}
	for i := range given {
		if given[i] != want[i] {
			t.Fatalf("string %d changed: %q, was %q", i, given[i], want[i])
		}
	}
}
