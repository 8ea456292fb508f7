package forward

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReplayBody checks that a body read in arbitrary chunks is replayed byte for byte when
// it fits the replay buffer, and refused when it does not.
func FuzzReplayBody(f *testing.F) {
	f.Add([]byte("hello"), uint8(3), false)
	f.Add(bytes.Repeat([]byte("x"), maxReplay+1), uint8(200), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, bigger bool) {
		if bigger {
			data = append(data, bytes.Repeat([]byte("y"), maxReplay)...)
		}
		b := newReplayBody(iotest.HalfReader(bytes.NewReader(data)))
		first := b.view()
		buf := make([]byte, int(chunk)+1)
		var got []byte
		for {
			n, err := first.Read(buf)
			got = append(got, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatal("first read differs from the body")
		}
		second := b.view()
		if len(data) > maxReplay {
			if second != nil {
				t.Fatal("a body over the replay limit was offered for replay")
			}
			return
		}
		if second == nil {
			t.Fatal("a kept body was not offered for replay")
		}
		again, err := io.ReadAll(second)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("replay differs (err %v)", err)
		}
		if _, err := first.Read(buf); !errors.Is(err, errBodyMoved) {
			t.Fatalf("old view read after replay: %v", err)
		}
	})
}

func TestReplayBodyUntouchedIsReplayable(t *testing.T) {
	b := newReplayBody(bytes.NewReader([]byte("abc")))
	// Two views in a row: offering the body once must not use up the replay.
	if first, second := b.view(), b.view(); first == nil || second == nil {
		t.Fatal("an unread body must be replayable (connect failures retry)")
	}
}

func TestExplainNoCluster(t *testing.T) {
	for in, want := range map[string]string{
		"outbound|9080||ratings.default.svc.cluster.local": `cluster "outbound|9080||ratings.default.svc.cluster.local" not found: no service ratings.default.svc.cluster.local with port 9080 is known to this proxy`,
		"weird": `cluster "weird" not found`,
		"":      "the route selects no cluster (every weight is 0)",
	} {
		if got := explainNoCluster(in); got != want {
			t.Errorf("explainNoCluster(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShadowHost(t *testing.T) {
	for in, want := range map[string]string{"reviews:9080": "reviews-shadow:9080", "reviews": "reviews-shadow", "[::1]": "[::1]-shadow"} {
		if got := shadowHost(in); got != want {
			t.Errorf("shadowHost(%q) = %q, want %q", in, got, want)
		}
	}
}
