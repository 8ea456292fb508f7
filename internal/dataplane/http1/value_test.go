package http1

import (
	"bytes"
	"net/textproto"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// NameForm and ValidName agree with httpguts on what a field name is, and with net/textproto on which
// names are already canonical.
func FuzzNameForm(f *testing.F) {
	for _, s := range []string{"Content-Type", "content-type", "ETag", "X-Envoy-Peer-Metadata", "x", "X-", "-a", "A b", "", "Ö", "Foo_Bar", "FOO"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		token, canonical := NameForm([]byte(s))
		if want := httpguts.ValidHeaderFieldName(s); token != want || ValidName(s) != want {
			t.Fatalf("%q: NameForm's token %v, ValidName %v, want %v", s, token, ValidName(s), want)
		}
		if !token {
			return
		}
		if want := textproto.CanonicalMIMEHeaderKey(s) == s; canonical != want {
			t.Fatalf("%q: canonical %v, want %v", s, canonical, want)
		}
	})
}

// TestNameFormEveryByte puts each of the 256 bytes at each position of names of 1 to 24
// bytes, in canonical and other names, and holds NameForm to httpguts and textproto.
func TestNameFormEveryByte(t *testing.T) {
	for _, base := range []string{"Content-Type-Of-The-Answer", "x-envoy-upstream-service", "A-B-C-D-E-F-G-H-I-J-K-L-M", "Ab12-Cd34-Ef56-Gh78-Ij90-K"} {
		for n := 1; n <= 24; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					b := []byte(base[:n])
					b[pos] = byte(c)
					token, canonical := NameForm(b)
					want := httpguts.ValidHeaderFieldName(string(b))
					if token != want {
						t.Fatalf("NameForm(%q) token %v, want %v", b, token, want)
					}
					if want && canonical != (textproto.CanonicalMIMEHeaderKey(string(b)) == string(b)) {
						t.Fatalf("NameForm(%q) canonical %v, want %v", b, canonical, !canonical)
					}
				}
			}
		}
	}
}

// TestValidValueEveryByte puts each of the 256 bytes at each position of values of 0 to
// 24 bytes (a word and a half, so the eight-byte steps and the tail both see it), among
// visible ASCII and obs-text, and holds ValidValue to net/http's rule.
func TestValidValueEveryByte(t *testing.T) {
	for n := 1; n <= 24; n++ {
		for _, fill := range []byte{'a', 0x80, 0xff, ' '} {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					b := bytes.Repeat([]byte{fill}, n)
					b[pos] = byte(c)
					if got, want := ValidValue(b), httpguts.ValidHeaderFieldValue(string(b)); got != want {
						t.Fatalf("ValidValue(%q) = %v, want %v", b, got, want)
					}
				}
			}
		}
	}
	if !ValidValue(nil) {
		t.Fatal("an empty value is valid")
	}
}

func FuzzValidValue(f *testing.F) {
	for _, s := range []string{"", "text/plain", "a\tb", "a\r\nb", "\x7f", "caf\xc3\xa9 au lait, s'il vous plaît", "0123456789abcdef\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := httpguts.ValidHeaderFieldValue(string(b))
		if got := ValidValue(b); got != want {
			t.Fatalf("ValidValue(%q) = %v, want %v", b, got, want)
		}
		if got := ValidValueString(string(b)); got != want {
			t.Fatalf("ValidValueString(%q) = %v, want %v", b, got, want)
		}
	})
}

func FuzzEqualFoldASCII(f *testing.F) {
	f.Add([]byte("content-length"), "Content-Length")
	f.Add([]byte("KEEP-ALIVE"), "keep-alive")
	f.Add([]byte("\u212a"), "k") // the Kelvin sign: Unicode folds it to k, ASCII does not
	f.Add([]byte("^"), "~")
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		want := strings.EqualFold(string(b), s)
		ascii := true
		for _, c := range []byte(string(b) + s) {
			ascii = ascii && c < 0x80
		}
		if got := EqualFoldASCII(b, s); ascii && got != want || !ascii && got && !want {
			t.Fatalf("EqualFoldASCII(%q, %q) = %v; strings.EqualFold %v", b, s, got, want)
		}
	})
}

// LineEnd and HeadEnd find what bytes.Index finds, whatever CRs and bare LFs come first.
func TestLineAndHeadEnd(t *testing.T) {
	for _, s := range []string{
		"", "\r\n", "\n", "\r", "a\r\n", "a\nb\r\n", "\r\r\n", "a\rb\r\nc", "\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n", "\r\n\r\n",
		"a\r\n\n\r\n\r\n", "a\n\r\n\r\n", "\r\n\r\r\n\r\n", "x\r\n\r\n\r\n", "\r\n\r",
	} {
		if got, want := LineEnd([]byte(s)), bytes.Index([]byte(s), []byte("\r\n")); got != want {
			t.Errorf("LineEnd(%q) = %d, want %d", s, got, want)
		}
		if got, want := HeadEnd([]byte(s)), bytes.Index([]byte(s), []byte("\r\n\r\n")); got != want {
			t.Errorf("HeadEnd(%q) = %d, want %d", s, got, want)
		}
	}
}

func FuzzLineAndHeadEnd(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "a\nb\r\n\r\n", "\r\r\n\n\r\n\r\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := LineEnd(b), bytes.Index(b, []byte("\r\n")); got != want {
			t.Fatalf("LineEnd(%q) = %d, want %d", b, got, want)
		}
		if got, want := HeadEnd(b), bytes.Index(b, []byte("\r\n\r\n")); got != want {
			t.Fatalf("HeadEnd(%q) = %d, want %d", b, got, want)
		}
	})
}

// A value with a CR or an LF anywhere has a line break, and gets a space for each; any
// other value is given back as it is.
func TestSpaceLineBreaks(t *testing.T) {
	for v, want := range map[string]string{"": "", "a b\t": "a b\t", "a\rb": "a b", "a\nb": "a b", "\r\n": "  ", "x\n": "x "} {
		if got := SpaceLineBreaks(v); got != want || HasLineBreak(v) != (v != want) {
			t.Errorf("%q: SpaceLineBreaks %q, HasLineBreak %v; want %q", v, got, HasLineBreak(v), want)
		}
		if got := AppendSpaceLineBreaks([]byte("k: "), v); string(got) != "k: "+want {
			t.Errorf("%q: AppendSpaceLineBreaks %q, want %q", v, got, "k: "+want)
		}
	}
}
