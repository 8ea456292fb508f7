package h1server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// placedSeeds are heads of the forms a checked head takes the layout of its check in:
// names in and out of canonical form, repeats, whitespace and tabs around values, empty
// values, Host anywhere, HTTP/1.0, bodies, targets of every form, and the most fields the
// check notes and one more.
var placedSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /echo?size=1024 HTTP/1.1\r\nHost: svc:9080\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n",
	"GET /a HTTP/1.1\r\nhost: x\r\nx-request-id: abc\r\ncontent-TYPE: text/plain\r\nX-A:1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nX-B:\t b \t\r\nX-A:  3 \r\nX-Empty:\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 5\r\nHost: x\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: T\r\n\r\n",
	"GET http://a.example/b?c HTTP/1.1\r\nHost: a.example\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: a=1\r\ncookie: b=2\r\n\r\n",
	manyFields(16),
	manyFields(17),
}

// manyFields is a GET with n fields, Host among them.
func manyFields(n int) string {
	var b strings.Builder
	b.WriteString("GET /many HTTP/1.1\r\nHost: x\r\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "X-F%d: v%d\r\n", i, i)
	}
	b.WriteString("\r\n")
	return b.String()
}

// readPlaced has head arrive on a checked connection in one read, as a keep-alive
// client's next request does, and returns the bytes the check passed in place (nil when
// it did not: refused, or not in place), and whether it gives their layout (Placed).
func readPlaced(t testing.TB, head []byte) (*http1.Conn, []byte, bool) {
	t.Helper()
	// With a TLS state the Conn does not wait for an HTTP/2 preface: the first head is
	// read as a later one is.
	g := http1.NewConn(byteConn{r: bytes.NewReader(head)}, http1.Limits{AcceptHTTP10: true}, &tls.ConnectionState{})
	buf := make([]byte, len(head)+64)
	n, _ := g.Read(buf)
	if n != len(head) || !bytes.Equal(buf[:n], head) {
		return g, nil, false
	}
	hd, _ := g.Placed(buf[:n])
	return g, buf[:n], hd != nil
}

// requestOf is what a handler sees of a parsed request, and why it was refused.
func requestOf(req *http.Request, rb *body, why string) string {
	if why != "" {
		return "refused: " + why
	}
	return fmt.Sprintf("%s %q %s host=%q uri=%q cl=%d te=%q close=%v body=%v\n%#v",
		req.Method, req.URL.String(), req.Proto, req.Host, req.RequestURI, req.ContentLength,
		req.TransferEncoding, req.Close, rb != nil, req.Header)
}

// A head the check passed in place is read from the check's layout (Placed) into the
// request the loop's own reading of the same bytes gives. One of more fields than the
// check notes has no layout, and is read again.
func TestPlacedHeadsParseAsTheirBytes(t *testing.T) {
	for _, s := range placedSeeds {
		g, head, placed := readPlaced(t, []byte(s))
		if head == nil {
			t.Fatalf("%q was not passed in place", s)
		}
		if want := s != manyFields(17); placed != want {
			t.Fatalf("%q: layout given %v, want %v", s, placed, want)
		}
		comparePlaced(t, g, head)
	}
}

// comparePlaced parses head with and without the check's layout, into rooms of 2 and 16
// values, and fails when the two requests differ.
func comparePlaced(t *testing.T, g *http1.Conn, head []byte) {
	t.Helper()
	for _, room := range []int{2, 16} {
		placed := newParseConn()
		placed.check = g
		pst, preq, prb, pwhy := parseState(placed, head, room)
		got := requestOf(preq, prb, pwhy)
		ast, areq, arb, awhy := parseState(newParseConn(), bytes.Clone(head), room)
		want := requestOf(areq, arb, awhy)
		if got != want {
			t.Fatalf("%q (room %d):\nfrom the check's layout: %s\nread again:             %s", head, room, got, want)
		}
		if pwhy == "" {
			checkReceived(t, head, pst, preq)
			checkReceived(t, head, ast, areq)
		}
		// Once more on a connection whose last head was the one compared before: its
		// lines, where they are the same bytes in the same place, are recalled.
		recalling.Lock()
		_, rreq, rrb, rwhy := parseState(recalling.c, bytes.Clone(head), room)
		recalled := requestOf(rreq, rrb, rwhy)
		recalling.Unlock()
		if recalled != want {
			t.Fatalf("%q (room %d):\nafter the last head:    %s\nread afresh:            %s", head, room, recalled, want)
		}
	}
}

// recalling is the connection comparePlaced reads every head on once more, after the one
// before it.
var recalling = struct {
	sync.Mutex
	c *conn
}{c: newParseConn()}

// framingTakes says whether the body's framing may take the field k out of a request's
// map (Transfer-Encoding, Trailer, Connection: close).
func framingTakes(k string) bool {
	return k == "Transfer-Encoding" || k == "Trailer" || k == "Connection"
}

// checkReceived fails unless st lists the fields of head, a head parse accepted into req,
// as ReceivedRequest gives them: every field line in order, under its map key, with its
// value as the map holds it (Host as req.Host), when there are at most 16 and no name
// comes twice; none otherwise.
func checkReceived(t *testing.T, head []byte, st *requestState, req *http.Request) {
	t.Helper()
	var want []http1.ReceivedField
	seen := map[string]bool{}
	twice := false
	lines := strings.Split(string(head), "\r\n")
	for _, line := range lines[1 : len(lines)-2] { // between the request line and the empty line
		name, value, _ := strings.Cut(line, ":")
		k := http.CanonicalHeaderKey(name)
		twice = twice || seen[k]
		seen[k] = true
		want = append(want, http1.ReceivedField{Key: k, Value: strings.Trim(value, " \t")})
	}
	if twice || len(want) > 16 {
		want = nil
	}
	got := st.recv[:st.nrecv]
	if len(got) != len(want) {
		t.Fatalf("%q: %d fields listed, want %d", head, len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Value != want[i].Value {
			t.Fatalf("%q: field %d listed as %q: %q, want %q: %q", head, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
		if k := got[i].Key; k == "Host" {
			if got[i].Value != req.Host && req.URL.Host == "" {
				t.Fatalf("%q: Host listed as %q, the request's is %q", head, got[i].Value, req.Host)
			}
		} else if vv, in := req.Header[k]; !got[i].Received(k, vv) && (in || !framingTakes(k)) {
			t.Fatalf("%q: the map's %q is not the field listed (%q)", head, k, vv)
		}
	}
}

// The layout is the check's only for the bytes it checked where they lie: a copy of
// them, or a head of another length at the same place, is read afresh.
func TestPlacedOnlyForTheBytesChecked(t *testing.T) {
	g, head, _ := readPlaced(t, []byte(placedSeeds[1]))
	if hd, _ := g.Placed(bytes.Clone(head)); hd != nil {
		t.Fatal("Placed answered for a copy of the head")
	}
	if hd, _ := g.Placed(head[:len(head)-2]); hd != nil {
		t.Fatal("Placed answered for a shorter head at the same place")
	}
	if hd, spans := g.Placed(head); hd == nil || len(spans) != 3 {
		t.Fatalf("Placed(the head) = %v, %d spans; want its check and 3", hd, len(spans))
	}
	if _, err := g.Read(make([]byte, 16)); err == nil {
		t.Fatal("read after the only head did not end")
	}
	if hd, _ := g.Placed(head); hd != nil {
		t.Fatal("Placed still answered after the next Read")
	}
}

// The loop takes a checked connection's layouts: newConn notes the check under it.
func TestNewConnNotesTheCheck(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	g := http1.NewConn(c1, http1.Limits{}, nil)
	if c := newConn(&Server{}, g); c.check != g {
		t.Fatal("a connection read through http1 does not use its check's layouts")
	}
	if c := newConn(&Server{}, c1); c.check != nil {
		t.Fatal("an unchecked connection has a check")
	}
}

// FuzzPlacedHead: any head the check passes in place parses from its layout as from its
// bytes.
func FuzzPlacedHead(f *testing.F) {
	for _, s := range placedSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end := bytes.Index(in, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		g, head, _ := readPlaced(t, in[:end+4])
		if head == nil {
			return
		}
		comparePlaced(t, g, head)
	})
}
