package hpackenc

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// decodeBlock decodes one block with x/net's decoder (the connection's, kept across
// blocks as a peer keeps it).
func decodeBlock(t testing.TB, d *hpack.Decoder, block []byte) []hpack.HeaderField {
	t.Helper()
	fields, err := d.DecodeFull(block)
	if err != nil {
		t.Fatalf("decoding %x: %v", block, err)
	}
	return fields
}

// Every static-table index this package knows decodes, in x/net's decoder, to the name
// (and for staticField the value) it stands for, and every name the table has is found.
func TestStaticTableAgreesWithRFC(t *testing.T) {
	d := hpack.NewDecoder(4096, nil)
	for i := 1; i <= 61; i++ {
		f := decodeBlock(t, d, []byte{0x80 | byte(i)})[0]
		if got := staticName(f.Name); got == 0 || got > i {
			t.Errorf("static index %d is %q; staticName says %d", i, f.Name, got)
		}
		if f.Value != "" {
			if got := staticField(f.Name, f.Value); got != i {
				t.Errorf("static index %d is %q: %q; staticField says %d", i, f.Name, f.Value, got)
			}
		}
	}
	if staticName("x-request-id") != 0 || staticField(":status", "201") != 0 || staticField("accept-encoding", "gzip") != 0 {
		t.Fatal("a field the static table does not have was found in it")
	}
}

// Blocks of a connection decode to the fields written, in order, with the first block
// opening with the size update to 0 and no later one repeating it.
func TestBlocksRoundTrip(t *testing.T) {
	e := New()
	d := hpack.NewDecoder(4096, nil)
	blocks := [][]hpack.HeaderField{
		{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "text/plain"}, {Name: "x-request-id", Value: "0f6a2c1e-3b7d-4c8e-9a51-2d4e6f8a0b1c"}},
		{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/api/v1/items?limit=10"}, {Name: ":scheme", Value: "http"}, {Name: ":authority", Value: "reviews.default.svc.cluster.local:9080"}},
		{{Name: ":status", Value: "503"}, {Name: "server", Value: "envoy"}, {Name: "x-empty", Value: ""}, {Name: "accept-encoding", Value: "gzip, deflate"}},
		{{Name: "x-long", Value: strings.Repeat("long value ", 300)}, {Name: strings.Repeat("n", 200), Value: "\x00\xff binary"}},
	}
	for n, want := range blocks {
		e.Begin()
		for _, f := range want {
			e.WriteField(f.Name, f.Value)
		}
		block := append([]byte(nil), e.Bytes()...)
		if sizeUpdate := block[0]&0xe0 == 0x20; sizeUpdate != (n == 0) {
			t.Fatalf("block %d opens with %#x: size update %v, want it on the first block only", n, block[0], sizeUpdate)
		}
		got := decodeBlock(t, d, block)
		if len(got) != len(want) {
			t.Fatalf("block %d: decoded %d fields, want %d", n, len(got), len(want))
		}
		for i := range want {
			if got[i].Name != want[i].Name || got[i].Value != want[i].Value {
				t.Fatalf("block %d field %d: %q: %q, want %q: %q", n, i, got[i].Name, got[i].Value, want[i].Name, want[i].Value)
			}
		}
	}
	// Nothing was indexed: a decoder that shrinks its table to 0 after the first block
	// (a peer lowering SETTINGS_HEADER_TABLE_SIZE) loses nothing.
	if _, err := d.DecodeFull([]byte{0x80 | 62}); err == nil {
		t.Fatal("the peer's dynamic table has an entry (index 62 decodes), want none")
	}
}

// A field the static table has whole is one byte; another with a static name is the
// name's index and the value as it is.
func TestEncodingSizes(t *testing.T) {
	e := New()
	e.Begin() // the first block's size update
	e.Begin()
	e.WriteField(":status", "200")
	e.WriteField(":method", "GET")
	if !bytes.Equal(e.Bytes(), []byte{0x88, 0x82}) {
		t.Fatalf("static fields encode as %x, want 8882", e.Bytes())
	}
	e.Begin()
	e.WriteField("content-length", "1024")
	// 0000 + index 28 (4-bit prefix: 0x0f, then 28-15=13), then the value's length and bytes.
	if b := e.Bytes(); !bytes.Equal(b, []byte{0x0f, 13, 4, '1', '0', '2', '4'}) {
		t.Fatalf("content-length: 1024 encodes as %x, want 0f0d0431303234", b)
	}
}

// Whatever the fields, a block decodes to them (names as HTTP/2 sends them: lowercase).
func FuzzEncoder(f *testing.F) {
	f.Add(":status", "200", "x-a", "b")
	f.Add(":path", "/", "content-length", "0")
	f.Add("accept-encoding", "gzip, deflate", strings.Repeat("k", 130), strings.Repeat("\xff", 300))
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		e := New()
		d := hpack.NewDecoder(4096, nil)
		d.SetMaxStringLength(1 << 20)
		for range 2 {
			e.Begin()
			e.WriteField(n1, v1)
			e.WriteField(n2, v2)
			got := decodeBlock(t, d, e.Bytes())
			if len(got) != 2 || got[0].Name != n1 || got[0].Value != v1 || got[1].Name != n2 || got[1].Value != v2 {
				t.Fatalf("decoded %q", got)
			}
		}
	})
}

// WriteFieldParts writes what WriteField writes for the joined value, when that value has
// no static entry of its own.
func TestWriteFieldParts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts []string
	}{
		{":path", []string{"/p", "?", "q=1"}},
		{":path", []string{"/", "?", ""}},
		{"x-custom", []string{"a", strings.Repeat("b", 300)}},
		{"content-type", []string{"text/", "plain"}},
	} {
		a, b := New(), New()
		a.WriteField(tc.name, strings.Join(tc.parts, ""))
		b.WriteFieldParts(tc.name, tc.parts...)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s %q: WriteFieldParts %x, WriteField %x", tc.name, tc.parts, b.Bytes(), a.Bytes())
		}
	}
}

// WriteFieldInt writes what WriteField writes for the number's decimal text.
func TestWriteFieldInt(t *testing.T) {
	for _, v := range []int64{0, 7, 1024, 1 << 40, -1} {
		a, b := New(), New()
		a.WriteField("content-length", strconv.FormatInt(v, 10))
		b.WriteFieldInt("content-length", v)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%d: WriteFieldInt %x, WriteField %x", v, b.Bytes(), a.Bytes())
		}
	}
}
