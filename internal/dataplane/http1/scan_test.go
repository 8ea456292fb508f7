package http1

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/testutil"
)

// scanFieldRef is ScanField as the per-line passes read a line (parseHead's before
// ScanField, and the pool's): the first LF, after a CR; the first colon, not first; the
// name a token (NameForm); the value's bounds (OWSBounds); the value's bytes (ValidValue).
// It is the reference ScanField must agree with, line by line.
func scanFieldRef(buf []byte, off int) (colon, vs, ve, cr int, canonical, ok bool) {
	j := bytes.IndexByte(buf[off:], '\n')
	if j < 1 || buf[off+j-1] != '\r' {
		return 0, 0, 0, 0, false, false
	}
	cr = off + j - 1
	c := bytes.IndexByte(buf[off:cr], ':')
	if c <= 0 {
		return 0, 0, 0, 0, false, false
	}
	token, canonical := NameForm(buf[off : off+c])
	vs, ve = OWSBounds(buf, off+c+1, cr)
	if !token || !ValidValue(buf[vs:ve]) {
		return 0, 0, 0, 0, false, false
	}
	return off + c, vs, ve, cr, canonical, true
}

// valueEndRef is ValueEnd as two passes: the first LF from i, after a CR, and ValidValue
// over the bytes before that CR.
func valueEndRef(buf []byte, i int) int {
	j := bytes.IndexByte(buf[i:], '\n')
	if j < 1 || buf[i+j-1] != '\r' || !ValidValue(buf[i:i+j-1]) {
		return -1
	}
	return i + j - 1
}

// checkScanAt compares ScanField with the reference on the line at off of buf.
func checkScanAt(t *testing.T, buf []byte, off int) {
	t.Helper()
	colon, vs, ve, cr, canonical, ok := ScanField(buf, off)
	wcolon, wvs, wve, wcr, wcanonical, wok := scanFieldRef(buf, off)
	if colon != wcolon || vs != wvs || ve != wve || cr != wcr || canonical != wcanonical || ok != wok {
		t.Fatalf("ScanField(%q, %d):\ngot  colon %d value [%d, %d) cr %d canonical %v ok %v\nwant colon %d value [%d, %d) cr %d canonical %v ok %v",
			buf, off, colon, vs, ve, cr, canonical, ok, wcolon, wvs, wve, wcr, wcanonical, wok)
	}
}

// checkScanLine compares ScanField with the reference on line (a field line and what
// follows it) after a few bytes of a line before it, and on every cut of it (buf ends
// first); and ValueEnd at every start.
func checkScanLine(t *testing.T, line string) {
	t.Helper()
	const before = "GET / HTTP/1.1\r\n"
	buf := []byte(before + line)
	for n := len(before); n <= len(buf); n++ {
		checkScanAt(t, buf[:n], len(before))
	}
	for i := len(before); i <= len(buf); i++ {
		if got, want := ValueEnd(buf, i), valueEndRef(buf, i); got != want {
			t.Fatalf("ValueEnd(%q, %d) = %d, want %d", buf, i, got, want)
		}
	}
}

// Every byte, at every place of a name or a value up to past two words (the scanner reads
// eight bytes at a time), and in every place of the line's syntax: where the scanner and
// the reference could disagree on a byte's class, on a word's edge or on where buf ends.
func TestScanFieldEveryByte(t *testing.T) {
	const next = "Content-Length: 5\r\n\r\n"
	for c := range 256 {
		b := string([]byte{byte(c)})
		for p := range 19 {
			for _, name := range []string{
				"Abcdefghijklmnopqrst"[:p] + b + "Xyz",
				"abcdefghijklmnopqrst"[:p] + b + "xyz",
				"Abcdefg-Hijklmn-Opqrst"[:p] + b + "-Ab",
				"X-Aaaaaa-Bbbbbbb-Cccc"[:p] + b + "b",
				"X-Aaaaaa-Bbbbbbb-Cccc"[:p] + b + "B",
				"A1-2bcdefghijklmnopqrst"[:p] + b,
			} {
				checkScanLine(t, name+": v\r\n"+next)
				checkScanLine(t, name+":v\r\n")
			}
			for _, value := range []string{
				"abcdefghijklmnopqrst"[:p] + b + "xyz",
				"ab\tcd efgh\tijklmnopqrst"[:p] + b,
				strings.Repeat(" \t", 10)[:p] + b + "\t ",
			} {
				checkScanLine(t, "X-A: "+value+"\r\n"+next)
				checkScanLine(t, "X-A:"+value+"\r\n")
			}
		}
		for _, line := range []string{
			b + "X-A: v\r\n", // before a name: a folded line, a CR, the empty line
			b + "\r\n",
			"X-A" + b + ": v\r\n",
			"X-A:" + b + "\r\n",
			"X-A: v" + b + "\n",
			"X-A: v\r" + b + "\r\n",
			"\r" + b,
			b,
		} {
			checkScanLine(t, line)
		}
	}
}

// The cases ScanField reads in its own way, each taken or refused as the reference does.
func TestScanFieldCases(t *testing.T) {
	for _, line := range []string{
		"Host: x\r\n",
		"X-A:\tv\r\n",             // a tab as the OWS
		"X-A: v \t \r\n",          // trailing OWS
		"X-A:\r\n", "X-B: \t\r\n", // empty values
		"X-A: caf\xc3\xa9 \xff\x80\r\n",        // obs-text
		"X-A: a\x7fb\r\n",                      // DEL
		"X-A: a\x00b\r\n",                      // NUL
		"X-A: a\rb\r\n",                        // a lone CR
		"X-A: ab\r\r\n",                        // a CR before the CRLF
		"X(A): v\r\n",                          // a name with a non-token byte
		"X_A.b~c!d#e$f%g&h'i*j+k^l`m|n: v\r\n", // every other token byte
		": v\r\n",                              // ':' first
		"X-A v\r\n",                            // no ':'
		"X-A : v\r\n",                          // a space before ':'
		" b\r\n", "\tb: c\r\n",                 // obs-fold
		"X-A: v\n\r\n", // a bare LF
		"\r\n", "\n",   // the empty line, a bare LF as one
		"X-A: v",           // not all there
		"X-Abcdefghijklmn", // not all there, in a name
		"x-request-id: 1\r\n", "CACHE-CONTROL: no\r\n", "X-b3-TraceId: 2\r\n",
		"Www-Authenticate: x\r\n", "X--A: y\r\n", "X-A-: z\r\n",
		"Abcdefg-Hijklmn-Opqrstu-V: w\r\n", "Abcdefg-hijklmn: w\r\n",
		"Content-Length: 1234567890123456789012345\r\n",
	} {
		checkScanLine(t, line)
	}
}

// Heads made of the pieces the scanner treats apart, at random, compared with the
// reference at every offset (a line's start or not).
func TestScanFieldRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		checkScanEvery(t, randomFields(r, r.IntN(2) == 0))
	}
}

// checkScanEvery compares ScanField with the reference at every offset of buf.
func checkScanEvery(t *testing.T, buf []byte) {
	t.Helper()
	for off := 0; off <= len(buf); off++ {
		checkScanAt(t, buf, off)
	}
}

// randomFields is field lines as testutil.RandomFieldLines makes them, with the framing
// fields the request check reads.
func randomFields(r *rand.Rand, clean bool) []byte {
	return testutil.RandomFieldLines(r, clean, "Content-Length: 5", "content-length:12", "Content-Length: +1",
		"Connection: keep-alive, Upgrade", "connection: close", "Transfer-Encoding: chunked", "transfer-encoding: gzip",
		"Upgrade: websocket", "host: a:1", "Host: svc:9080")
}

// Whatever the bytes, ScanField agrees with the reference, at every offset.
func FuzzScanField(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 32 {
		f.Add(randomFields(r, i%2 == 0))
	}
	f.Add([]byte("Content-Length: 5\r\nX-A:\t v \t\r\nx-b:\r\n\r\nhello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScanEvery(t, b)
	})
}

// The scanner's slow path reads the names its words do not as NameForm does.
func TestNameEndBytes(t *testing.T) {
	for c := range 256 {
		for _, name := range [][]byte{{byte(c)}, {'A', byte(c)}, {'a', byte(c)}, {'-', byte(c)}, {byte(c), 'a'}, {byte(c), 'A'}} {
			colon, canonical := nameEndBytes(append(name[:len(name):len(name)], ':'), 0)
			token, wantCanonical := NameForm(name)
			if (colon >= 0) != token && c != ':' || token && canonical != wantCanonical {
				t.Fatalf("%q: colon %d canonical %v; NameForm token %v canonical %v", name, colon, canonical, token, wantCanonical)
			}
		}
	}
}
