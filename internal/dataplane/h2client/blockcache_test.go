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

// nginxBlock is the head nginx 1.22 answers with to a client that asked for no dynamic
// table: literals with incremental indexing, which a table of size 0 cannot keep.
var nginxBlock = []byte{0x88, 0x76, 0x89, 0xaa, 0x63, 0x55, 0xe5, 0x80, 0xae, 0x21, 0x2e, 0x1f,
	0x61, 0x96, 0xdd, 0x6d, 0x5f, 0x4a, 0x01, 0xc5, 0x2f, 0x94, 0x8a, 0x08, 0x02, 0x71, 0x40,
	0x33, 0x71, 0xa7, 0xee, 0x04, 0x2a, 0x62, 0xd1, 0xbf, 0x5f, 0x87, 0x49, 0x7c, 0xa5, 0x8a,
	0xe8, 0x19, 0xaa, 0x5c, 0x04, 0x31, 0x30, 0x32, 0x34}

func TestTableFree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block []byte
		empty bool // the table's size is 0
		want  bool
	}{
		{"nginx's head, table of size 0", nginxBlock, true, true},
		{"nginx's head, table of 4096", nginxBlock, false, false},
		{"nginx's first head (a size update first)", append([]byte{0x20}, nginxBlock...), true, false},
		{"empty", nil, false, true},
		{"static indexed :status 200", []byte{0x88}, false, true},
		{"literal without indexing, static name", encodeBlock(t, 0, nginxHead...), false, true},
		{"literal without indexing, literal name", encodeBlock(t, 0, hpack.HeaderField{Name: "x-custom", Value: "v"}), false, true},
		{"incremental indexing", encodeBlock(t, 4096, hpack.HeaderField{Name: "x-custom", Value: "v"}), false, false},
		{"incremental indexing, table of size 0", encodeBlock(t, 4096, hpack.HeaderField{Name: "x-custom", Value: "v"}), true, true},
		{"indexed dynamic entry 62, table of size 0", []byte{0xbe}, true, false},
		{"indexed dynamic entry 62", []byte{0xbe}, false, false},
		{"indexed 0", []byte{0x80}, false, false},
		{"table size update", []byte{0x20}, false, false},
		{"never indexed", encodeBlock(t, 0, hpack.HeaderField{Name: "authorization", Value: "secret", Sensitive: true}), false, false},
		{"value cut short", []byte{0x0f, 0x10, 0x05, 'a', 'b'}, false, false},
		{"integer cut short", []byte{0xff}, false, false},
		{"integer too long", []byte{0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, false, false},
	} {
		if got := tableFree(tc.block, tc.empty); got != tc.want {
			t.Errorf("%s: tableFree(% x) = %v, want %v", tc.name, tc.block, got, tc.want)
		}
	}
}

// A block is kept on its second sighting and then served from the cache; one that needs
// the dynamic table is never kept.
func TestBlockCacheKeepsOnSecondSight(t *testing.T) {
	var c blockCache
	b := encodeBlock(t, 0, nginxHead...)
	dec := hpack.NewDecoder(4096, nil)
	fields, err := dec.DecodeFull(b)
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
	f2, err := hpack.NewDecoder(4096, nil).DecodeFull(indexing)
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
	// nginx's answers after a size update to 0, then the table set back to 4096 (the kept
	// block would now insert) and the same answers again.
	f.Add(seq(append([]byte{0x20}, nginxBlock...), nginxBlock, nginxBlock, nginxBlock,
		[]byte{0x3f, 0xe1, 0x1f}, nginxBlock, nginxBlock, nginxBlock))
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
			want, werr := ref.DecodeFull(b)
			got, ok := c.lookup(b)
			var gerr error
			if !ok {
				got, gerr = own.DecodeFull(b)
				if gerr == nil {
					c.sawBlock(b)
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
