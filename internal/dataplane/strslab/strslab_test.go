package strslab

import (
	"bytes"
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

// A Copier's strings are copies, as String's: they keep their bytes while its block is
// used on and the caller's buffer changes; a long one is a string of its own.
func TestCopier(t *testing.T) {
	var c Copier
	buf := []byte("Server: up")
	a := c.String(buf)
	buf[0] = 'X'
	b := c.String(buf)
	long := c.String(bytes.Repeat([]byte{'v'}, MaxLen+1))
	c.Done()
	c.Done() // twice: nothing to give back
	clear(buf)
	if a != "Server: up" || b != "Xerver: up" || len(long) != MaxLen+1 || c.String(nil) != "" {
		t.Fatalf("Copier strings %q, %q, %d bytes", a, b, len(long))
	}
	c.Done()
}

// A Recall gives the string it kept at a place for the same bytes there, and a new copy,
// which it keeps instead, for others; the strings it gave before stay what they were.
func TestRecall(t *testing.T) {
	var r Recall
	var c Copier
	defer c.Done()
	buf := []byte("Host: svc")
	first := r.Line(1, buf, &c)
	if again := r.Line(1, []byte("Host: svc"), &c); unsafe.StringData(again) != unsafe.StringData(first) {
		t.Error("the same line at the same place was copied again")
	}
	if other := r.Line(2, []byte("Host: svc"), &c); unsafe.StringData(other) == unsafe.StringData(first) || other != "Host: svc" {
		t.Errorf("another place recalled place 1's string: %q", other)
	}
	copy(buf, "Host: abc")
	if changed := r.Line(1, buf, &c); changed != "Host: abc" || first != "Host: svc" {
		t.Fatalf("changed line %q, first %q", changed, first)
	}
	if shorter := r.Line(1, buf[:6], &c); shorter != "Host: " {
		t.Fatalf("shorter line %q", shorter)
	}
	if empty := r.Line(0, nil, &c); empty != "" || r.Line(RecallLines-1, buf, &c) != "Host: abc" {
		t.Fatal("empty line or last place")
	}
}
