package h2client

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// encodeBlock encodes fields with x/net's encoder and a dynamic table of tableSize.
func encodeBlock(t testing.TB, tableSize uint32, fields ...hpack.HeaderField) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf) // a table of 4096 bytes
	if tableSize != 4096 {
		enc.SetMaxDynamicTableSizeLimit(tableSize)
		enc.SetMaxDynamicTableSize(tableSize)
		// The size update goes out with the next field: let it go with one not kept.
		if err := enc.WriteField(hpack.HeaderField{Name: "x-warm", Value: "up"}); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
	}
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	return slices.Clone(buf.Bytes())
}

var nginxHead = []hpack.HeaderField{
	{Name: ":status", Value: "200"},
	{Name: "server", Value: "nginx/1.22.1"},
	{Name: "date", Value: "Sun, 06 Dec 2026 03:17:04 GMT"},
	{Name: "content-type", Value: "text/plain"},
	{Name: "content-length", Value: "1024"},
}

func TestTableFree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block []byte
		want  bool
	}{
		{"empty", nil, true},
		{"static indexed :status 200", []byte{0x88}, true},
		{"literal without indexing, static name", encodeBlock(t, 0, nginxHead...), true},
		{"literal without indexing, literal name", encodeBlock(t, 0, hpack.HeaderField{Name: "x-custom", Value: "v"}), true},
		{"incremental indexing", encodeBlock(t, 4096, hpack.HeaderField{Name: "x-custom", Value: "v"}), false},
		{"indexed dynamic entry 62", []byte{0xbe}, false},
		{"indexed 0", []byte{0x80}, false},
		{"table size update", []byte{0x20}, false},
		{"never indexed", encodeBlock(t, 0, hpack.HeaderField{Name: "authorization", Value: "secret", Sensitive: true}), false},
		{"value cut short", []byte{0x0f, 0x10, 0x05, 'a', 'b'}, false},
		{"integer cut short", []byte{0xff}, false},
		{"integer too long", []byte{0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false},
	} {
		if got := tableFree(tc.block); got != tc.want {
			t.Errorf("%s: tableFree(% x) = %v, want %v", tc.name, tc.block, got, tc.want)
		}
	}
}

// decodeAll decodes one block with dec, or returns the error.
func decodeAll(dec *hpack.Decoder, b []byte) ([]hpack.HeaderField, error) {
	return dec.DecodeFull(b)
}

// A block is kept on its second sighting and then served from the cache; one that needs
// the dynamic table is never kept.
func TestBlockCacheKeepsOnSecondSight(t *testing.T) {
	var c blockCache
	b := encodeBlock(t, 0, nginxHead...)
	dec := hpack.NewDecoder(4096, nil)
	fields, err := decodeAll(dec, b)
	if err != nil {
		t.Fatal(err)
	}
	c.offer(b, fields)
	if _, ok := c.lookup(b); ok {
		t.Fatal("kept on its first sighting")
	}
	c.offer(b, fields)
	got, ok := c.lookup(b)
	if !ok {
		t.Fatal("not kept on its second sighting")
	}
	if !slices.Equal(got, nginxHead) {
		t.Fatalf("cached fields %v, want %v", got, nginxHead)
	}
	other := encodeBlock(t, 0, append(slices.Clone(nginxHead[:2]), hpack.HeaderField{Name: "date", Value: "Sun, 06 Dec 2026 03:17:05 GMT"})...)
	if _, ok := c.lookup(other); ok {
		t.Fatal("a block with another date came from the cache")
	}

	indexing := encodeBlock(t, 4096, hpack.HeaderField{Name: "x-custom", Value: "v"})
	f2, err := decodeAll(hpack.NewDecoder(4096, nil), indexing)
	if err != nil {
		t.Fatal(err)
	}
	c.offer(indexing, f2)
	c.offer(indexing, f2)
	if _, ok := c.lookup(indexing); ok {
		t.Fatal("a block that inserts into the dynamic table was kept")
	}
}

// FuzzBlockCache feeds a sequence of header blocks (each prefixed with its length byte)
// to x/net's decoder alone and to the client's path (the cache, else a decoder of its
// own, offering each block decoded). Every block must decode to the same fields, or fail
// on both: a block wrongly taken as table-free would leave the two decoders' tables
// apart, and a later block would differ.
func FuzzBlockCache(f *testing.F) {
	seq := func(blocks ...[]byte) []byte {
		var out []byte
		for _, b := range blocks {
			out = append(out, byte(len(b)))
			out = append(out, b...)
		}
		return out
	}
	lit := encodeBlock(f, 0, nginxHead...)
	idx := encodeBlock(f, 4096, nginxHead...)
	f.Add(seq(lit, lit, lit, lit))
	f.Add(seq(idx, lit, idx, lit, lit, idx))
	f.Add(seq(lit, []byte{0x20}, lit, lit, []byte{0xbe}, lit))
	f.Add(seq([]byte{0x88}, []byte{0x88}, []byte{0x88}))
	f.Fuzz(func(t *testing.T, data []byte) {
		ref := hpack.NewDecoder(4096, nil)
		own := hpack.NewDecoder(4096, nil)
		ref.SetMaxStringLength(maxHeaderList)
		own.SetMaxStringLength(maxHeaderList)
		var c blockCache
		for i := 0; len(data) > 0; i++ {
			n := min(int(data[0]), len(data)-1)
			b := data[1 : 1+n]
			data = data[1+n:]
			want, werr := decodeAll(ref, b)
			got, ok := c.lookup(b)
			var gerr error
			if !ok {
				got, gerr = decodeAll(own, b)
				if gerr == nil {
					c.offer(b, got)
				}
			}
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("block %d (% x): x/net's error %v, the client's %v (from the cache: %v)", i, b, werr, gerr, ok)
			}
			if werr != nil {
				return // both decoders are broken from here on
			}
			if !slices.Equal(got, want) {
				t.Fatalf("block %d (% x): fields %v, x/net's %v (from the cache: %v)", i, b, got, want, ok)
			}
			// The two dynamic tables must hold the same entries: read them back by index
			// (an indexed field changes no table).
			for idx := byte(hpackStaticLen + 1); idx < 127; idx++ {
				w, werr := ref.DecodeFull([]byte{0x80 | idx})
				g, gerr := own.DecodeFull([]byte{0x80 | idx})
				if (werr == nil) != (gerr == nil) || !slices.Equal(w, g) {
					t.Fatalf("after block %d (% x, from the cache: %v): dynamic entry %d is %v (%v), x/net's %v (%v)", i, b, ok, idx, g, gerr, w, werr)
				}
				if werr != nil {
					break
				}
			}
		}
	})
}
