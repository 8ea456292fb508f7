package h2frame

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"golang.org/x/net/http2"
)

// frames returns the bytes of the frames written by write.
func frames(write func(fr *http2.Framer)) []byte {
	var b bytes.Buffer
	fr := http2.NewFramer(&b, nil)
	fr.AllowIllegalWrites = true
	write(fr)
	return b.Bytes()
}

func seeds() [][]byte {
	block := []byte{0x82, 0x86, 0x84, 0x41, 0x06, 'a', '.', 't', 'e', 's', 't'}
	return [][]byte{
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
		}),
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block, EndHeaders: true})
			_ = fr.WriteData(3, true, []byte("body"))
		}),
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, BlockFragment: block, EndHeaders: true, PadLength: 3})
		}),
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: block, EndHeaders: true, Priority: http2.PriorityParam{Weight: 3}})
		}),
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 9, BlockFragment: block[:2]})
			_ = fr.WriteContinuation(9, true, block[2:])
		}),
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 0, BlockFragment: block, EndHeaders: true})
		}),
		frames(func(fr *http2.Framer) { _ = fr.WritePing(false, [8]byte{1}) }),
		frames(func(fr *http2.Framer) {
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 11, BlockFragment: make([]byte, 300), EndHeaders: true})
		}),
	}
}

// What PeekHeaders reads is what x/net's Framer reads from the same bytes, and when it
// declines, it has consumed nothing. Frames longer than the reader's buffer or maxFrame
// are declined.
func FuzzPeekHeaders(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, uint32(16384))
		f.Add(s, uint32(100))
	}
	f.Fuzz(func(t *testing.T, in []byte, maxFrame uint32) {
		maxFrame = 16 + maxFrame%(1<<20)
		br := bufio.NewReaderSize(bytes.NewReader(in), 256)
		h, ok := PeekHeaders(br, maxFrame)
		if !ok {
			if n := br.Buffered(); n > 0 && n != min(len(in), 256) {
				t.Fatalf("declined after consuming: %d bytes buffered of %d", n, len(in))
			}
			return
		}
		if len(h.Fragment)+HeaderLen > 256 || uint32(len(h.Fragment)) > maxFrame {
			t.Fatalf("read a frame of %d bytes (buffer 256, limit %d)", len(h.Fragment), maxFrame)
		}
		frag := append([]byte(nil), h.Fragment...)
		h.Done(br)
		fr := http2.NewFramer(nil, bytes.NewReader(in))
		fr.SetMaxReadFrameSize(maxFrame)
		got, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("read in place, but the Framer fails: %v", err)
		}
		hf, isHeaders := got.(*http2.HeadersFrame)
		if !isHeaders || hf.StreamID != h.StreamID || hf.StreamEnded() != h.EndStream || !hf.HeadersEnded() ||
			hf.HasPriority() || !bytes.Equal(hf.HeaderBlockFragment(), frag) {
			t.Fatalf("read in place: stream %d, end %v, %x; the Framer: %v", h.StreamID, h.EndStream, frag, got)
		}
		// The reader is at the next frame, as the Framer is.
		rest, _ := br.Peek(br.Buffered())
		if want := in[HeaderLen+len(frag):]; !bytes.HasPrefix(want, rest) {
			t.Fatalf("after the frame: %x, want the rest of the input %x", rest, want)
		}
	})
}

// The usual HEADERS frame is read in place; each of the rarer ones is left to the Framer.
func TestPeekHeaders(t *testing.T) {
	s := seeds()
	for i, want := range []bool{true, true, false, false, false, false, false, false} {
		in := s[i]
		limit := uint32(16384)
		if i == 7 {
			limit = 100 // a frame over the limit
		}
		br := bufio.NewReader(bytes.NewReader(in))
		_, ok := PeekHeaders(br, limit)
		if ok != want {
			t.Errorf("seed %d: read in place %v, want %v", i, ok, want)
		}
	}
	big := frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: make([]byte, 5000), EndHeaders: true})
	})
	if _, ok := PeekHeaders(bufio.NewReaderSize(bytes.NewReader(big), 4096), 1<<20); ok {
		t.Error("a frame larger than the read buffer was read in place")
	}
}

// errWouldWait is what a source that must not wait says once its bytes are taken.
var errWouldWait = errors.New("the reader would wait")

// onceSource returns its bytes, then errWouldWait: a socket read without waiting.
type onceSource struct{ b []byte }

func (s *onceSource) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, errWouldWait
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// buffered is a Reader over a 256-byte buffer holding what arrived of in.
func buffered(in []byte, maxFrame uint32) (*Reader, *http2.Framer) {
	br := bufio.NewReaderSize(&onceSource{in}, 256)
	_, _ = br.Peek(256) // takes what arrived, up to the buffer's size
	fr := http2.NewFramer(nil, br)
	fr.SetMaxReadFrameSize(maxFrame)
	r := NewReader(fr, br, maxFrame)
	return &r, fr
}

func TestNext(t *testing.T) {
	ping := frames(func(fr *http2.Framer) { _ = fr.WritePing(false, [8]byte{1}) })
	block := []byte{0x82, 0x86, 0x84}
	whole := frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
	})
	opening := frames(func(fr *http2.Framer) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block})
	})
	big := frames(func(fr *http2.Framer) { _ = fr.WriteData(1, false, make([]byte, 300)) })
	for _, c := range []struct {
		name     string
		in       []byte
		maxFrame uint32
		want     Readiness
	}{
		{"nothing", nil, 16384, NeedMore},
		{"part of a frame header", ping[:5], 16384, NeedMore},
		{"a frame header without its payload", ping[:HeaderLen], 16384, NeedMore},
		{"all but a byte", ping[:len(ping)-1], 16384, NeedMore},
		{"a whole frame", ping, 16384, Buffered},
		{"a whole header block", whole, 16384, Buffered},
		{"a header block that CONTINUATION goes on with", opening, 16384, Blocking},
		{"a frame larger than the buffer", big[:100], 16384, Blocking},
		{"a frame over maxFrame, refused from its header", big[:HeaderLen], 200, Buffered},
	} {
		r, _ := buffered(c.in, c.maxFrame)
		if got := r.Next(); got != c.want {
			t.Errorf("%s: Next %d, want %d", c.name, got, c.want)
		}
	}
}

// When Next says Buffered, reading the frame (in place or through the Framer) takes no
// byte the buffer does not hold: it never meets the source's would-wait.
func FuzzNext(f *testing.F) {
	for _, s := range seeds() {
		f.Add(s, uint32(16384), 1000)
		f.Add(s, uint32(100), 20)
	}
	f.Fuzz(func(t *testing.T, in []byte, maxFrame uint32, arrived int) {
		maxFrame = 16 + maxFrame%(1<<20)
		if arrived < 0 || arrived > len(in) {
			arrived = len(in)
		}
		r, _ := buffered(in[:arrived], maxFrame)
		for r.Next() == Buffered {
			if h, ok := r.Headers(false); ok {
				r.Done(h)
				continue
			}
			_, err := r.ReadFrame()
			if errors.Is(err, errWouldWait) {
				t.Fatalf("a frame Next called buffered read past the buffer (%d bytes arrived)", arrived)
			}
			if err != nil && !errors.As(err, new(http2.StreamError)) {
				return // a connection error: the reader stops
			}
		}
	})
}
