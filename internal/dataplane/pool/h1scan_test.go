package pool

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

// scanFieldsRef is the field loop parsePlainHead had before h1scan.go, a pass per check
// (the line's end, the colon, the name, the value's bounds, the value): the reference the
// one-pass field loop must agree with, head by head, on what it takes and where the fields
// are. (http1's tests hold http1.ScanField to the same passes line by line, at every
// offset; these hold the loop around it: the empty line, the framing fields.)
func scanFieldsRef(buf []byte, off int) (spans []http1.FieldSpan, length int64, end int) {
	length = -1
	for {
		j := bytes.IndexByte(buf[off:], '\n') // the line's end: the first LF, after a CR
		if j < 1 || buf[off+j-1] != '\r' {
			return nil, 0, -1
		}
		e := off + j - 1
		if e == off {
			if length < 0 {
				return nil, 0, -1
			}
			return spans, length, e + 2
		}
		f := buf[off:e]
		colon := bytes.IndexByte(f, ':')
		if colon <= 0 {
			return nil, 0, -1
		}
		name := f[:colon]
		token, canonical := http1.NameForm(name)
		vs, ve := http1.OWSBounds(buf, off+colon+1, e)
		value := buf[vs:ve]
		if !token || !http1.ValidValue(value) {
			return nil, 0, -1
		}
		switch {
		case http1.EqualFoldASCII(name, "Content-Length"):
			n, ok := http1.ParseLength(value)
			if length >= 0 || !ok {
				return nil, 0, -1
			}
			length = n
		case http1.EqualFoldASCII(name, "Connection"):
			if !http1.EqualFoldASCII(value, "keep-alive") {
				return nil, 0, -1
			}
			off = e + 2
			continue
		case http1.EqualFoldASCII(name, "Transfer-Encoding"), http1.EqualFoldASCII(name, "Trailer"),
			http1.EqualFoldASCII(name, "Pragma"):
			return nil, 0, -1
		}
		spans = append(spans, http1.FieldSpan{Start: int32(off), Colon: int32(off + colon), ValueStart: int32(vs), ValueEnd: int32(ve), Canonical: canonical})
		off = e + 2
	}
}

// checkScan compares the scanner with the reference on head, the field lines of a head
// (a status line is put before them).
func checkScan(t *testing.T, head []byte) {
	t.Helper()
	const status = "HTTP/1.1 200 OK\r\n"
	buf := append([]byte(status), head...)
	var arr [16]http1.FieldSpan
	spans, length, end := scanFields(buf, len(status), arr[:0])
	wspans, wlength, wend := scanFieldsRef(buf, len(status))
	if end < 0 {
		spans, length = nil, 0
	}
	if end != wend || length != wlength || len(spans) != len(wspans) || len(spans) > 0 && !reflect.DeepEqual(spans, wspans) {
		t.Fatalf("%q:\nscanner   end %d length %d %+v\nreference end %d length %d %+v", head, end, length, spans, wend, wlength, wspans)
	}
}

// Every byte, at every place of a name or a value up to past two words (the scanner reads
// eight bytes at a time), and in every place of the line's syntax: where the scanner and
// the reference disagree on a byte's class or on a word's edge.
func TestScanEveryByte(t *testing.T) {
	const cl = "Content-Length: 5\r\n"
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
				checkScan(t, []byte(name+": v\r\n"+cl+"\r\n"))
				checkScan(t, []byte(cl+name+":v\r\n\r\n"))
			}
			for _, value := range []string{
				"abcdefghijklmnopqrst"[:p] + b + "xyz",
				"ab\tcd efgh\tijklmnopqrst"[:p] + b,
				strings.Repeat(" \t", 10)[:p] + b + "\t ",
			} {
				checkScan(t, []byte("X-A: "+value+"\r\n"+cl+"\r\n"))
				checkScan(t, []byte(cl+"X-A:"+value+"\r\n\r\n"))
			}
		}
		for _, head := range []string{
			b + "X-A: v\r\n" + cl + "\r\n", // before a name: a folded line, a CR
			cl + "X-A" + b + ": v\r\n\r\n",
			cl + "X-A:" + b + "\r\n\r\n",
			cl + "X-A: v" + b + "\n\r\n",
			cl + "X-A: v\r" + b + "\r\n",
			cl + b + "\r\n",
			cl + "\r" + b,
			cl + b,
		} {
			checkScan(t, []byte(head))
		}
	}
}

// The cases the scanner reads in its own way, each taken or refused as the reference does.
func TestScanCases(t *testing.T) {
	for _, head := range []string{
		"Content-Length: 5\r\n\r\n",
		"Content-Length: 5\r\nX-A:\tv\r\n\r\n",                          // a tab as the OWS
		"Content-Length: 5\r\nX-A: v \t \r\n\r\n",                       // trailing OWS
		"Content-Length: 5\r\nX-A:\r\nX-B: \t\r\n\r\n",                  // empty values
		"Content-Length: 5\r\nX-A: caf\xc3\xa9 \xff\x80\r\n\r\n",        // obs-text
		"Content-Length: 5\r\nX-A: a\x7fb\r\n\r\n",                      // DEL
		"Content-Length: 5\r\nX-A: a\x00b\r\n\r\n",                      // NUL
		"Content-Length: 5\r\nX-A: a\rb\r\n\r\n",                        // a lone CR
		"Content-Length: 5\r\nX-A: ab\r\r\n\r\n",                        // a CR before the CRLF
		"Content-Length: 5\r\nX(A): v\r\n\r\n",                          // a name with a non-token byte
		"Content-Length: 5\r\nX_A.b~c!d#e$f%g&h'i*j+k^l`m|n: v\r\n\r\n", // every other token byte
		"Content-Length: 5\r\n: v\r\n\r\n",                              // ':' first
		"Content-Length: 5\r\nX-A v\r\n\r\n",                            // no ':'
		"Content-Length: 5\r\nX-A : v\r\n\r\n",                          // a space before ':'
		"Content-Length: 5\r\nX-A: v\r\n b\r\n\r\n",                     // obs-fold
		"Content-Length: 5\r\nX-A: v\n\r\n",                             // a bare LF
		"Content-Length: 5\r\n\n",                                       // a bare LF as the empty line
		"Content-Length: 5\r\n\r",                                       // not all there
		"Content-Length: 5\r\nX-A: v",                                   // not all there
		"Content-Length: 5\r\nX-Abcdefghijklmn",                         // not all there, in a name
		"content-length: 5\r\nx-request-id: 1\r\nCACHE-CONTROL: no\r\nX-b3-TraceId: 2\r\n\r\n",
		"Content-Length: 5\r\nX-Request-Id: 1\r\nWww-Authenticate: x\r\nX--A: y\r\nX-A-: z\r\n\r\n",
		"Content-Length: 5\r\nAbcdefg-Hijklmn-Opqrstu-V: w\r\nAbcdefg-hijklmn: w\r\n\r\n",
		"Content-Length: 5\r\nConnection: keep-alive\r\nCONNECTION: Keep-Alive\r\n\r\n",
		"Content-Length: 5\r\nConnection: close\r\n\r\n",
		"Content-Length: 5\r\ncontent-length: 5\r\n\r\n",
		"Content-Length: 5\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
		"Content-Length: 5\r\ntrailer: x\r\n\r\n",
		"Content-Length: 5\r\nPRAGMA: x\r\n\r\n",
		"X-A: v\r\n\r\n", // no Content-Length
		"Content-Length: 5\r\n" + strings.Repeat("X-A: 1\r\n", 20) + "\r\n",
	} {
		checkScan(t, []byte(head))
	}
}

// Heads made of the pieces the scanner treats apart, at random, compared with the
// reference: a later byte of a word the scanner read past, a name of every kind, values
// with tabs, control bytes and obs-text, lines cut or ended oddly.
func TestScanRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		checkScan(t, randomHead(r))
	}
}

// randomHead is an answer head's field lines as testutil.RandomFieldLines makes them,
// with the framing fields the pool reads.
func randomHead(r *rand.Rand) []byte {
	return testutil.RandomFieldLines(r, false, "Content-Length: 5", "content-length:12", "Content-Length: +1",
		"Connection: keep-alive", "connection: close", "Transfer-Encoding: chunked", "Trailer: x", "pragma: y")
}

// Whatever the bytes, the scanner agrees with the reference.
func FuzzScanFields(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 32 {
		f.Add(randomHead(r))
	}
	f.Add([]byte("Content-Length: 5\r\nX-A:\t v \t\r\nx-b:\r\n\r\nhello"))
	f.Fuzz(func(t *testing.T, head []byte) {
		checkScan(t, head)
	})
}
