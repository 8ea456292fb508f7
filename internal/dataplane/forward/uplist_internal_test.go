package forward

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/lucid-mesh/lucid/internal/dataplane/authz"
	"github.com/lucid-mesh/lucid/internal/dataplane/http1"
)

// listingWriter is a ResponseWriter whose server lists the request's fields.
type listingWriter struct {
	http.ResponseWriter
	rf []http1.ReceivedField
}

func (w listingWriter) ReceivedRequest() []http1.ReceivedField { return w.rf }

// received is a request whose header map holds fields as a parser put them there (Host
// as req.Host), with its server's list of them.
func received(fields ...string) (*http.Request, []http1.ReceivedField) {
	vals := make([]string, len(fields)/2)
	rf := make([]http1.ReceivedField, len(vals))
	h := http.Header{}
	req := &http.Request{Header: h}
	for i := range vals {
		k, v := fields[2*i], fields[2*i+1]
		vals[i] = v
		rf[i] = http1.ReceivedField{Key: k, Value: v, Slot: &vals[i]}
		if k == "Host" {
			req.Host = v
			continue
		}
		h[k] = vals[i : i+1 : i+1]
	}
	return req, rf
}

// listed is x's upstream fields as "Key: value" lines, and whether they are listed.
func listed(x *exchange) ([]string, bool) {
	var got []string
	if x.list == nil {
		return nil, x.listed
	}
	for _, f := range x.list.f[:x.list.n] {
		got = append(got, f.Key+": "+f.Value)
	}
	return got, x.listed
}

// A request's fields are listed when its map holds exactly what its server listed, as
// listed, and none of them needs the map's handling; the others are not.
func TestListFields(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields []string
		change func(http.Header)
		want   []string // nil: not listed
		envoy  bool
	}{
		{"plain", []string{"Host", "a", "User-Agent", "u", "Accept", "*/*"}, nil, []string{"User-Agent: u", "Accept: */*"}, false},
		{"framing and keep-alive", []string{"Content-Length", "3", "Host", "a", "Connection", "Keep-Alive", "X-A", "1"}, nil, []string{"X-A: 1"}, false},
		{"x-envoy", []string{"Host", "a", "X-Envoy-Retry-On", "5xx"}, nil, []string{"X-Envoy-Retry-On: 5xx"}, true},
		{"connection close", []string{"Host", "a", "Connection", "close"}, nil, nil, false},
		{"hop-by-hop", []string{"Host", "a", "Te", "trailers"}, nil, nil, false},
		{"idempotency key", []string{"Host", "a", "Idempotency-Key", "k"}, nil, nil, false},
		{"x-idempotency key", []string{"Host", "a", "X-Idempotency-Key", "k"}, nil, nil, false},
		{"a value replaced", []string{"Host", "a", "X-A", "1"}, func(h http.Header) { h.Set("X-A", "1") }, nil, false},
		{"a field added", []string{"Host", "a", "X-A", "1"}, func(h http.Header) { h.Set("Traceparent", "t") }, nil, false},
		{"a field removed", []string{"Host", "a", "X-A", "1", "X-B", "2"}, func(h http.Header) { h.Del("X-B") }, nil, false},
		{"content-length replaced", []string{"Host", "a", "Content-Length", "3"}, func(h http.Header) { h.Set("Content-Length", "3") }, nil, false},
		{"none listed", nil, nil, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, rf := received(tc.fields...)
			if tc.change != nil {
				tc.change(req.Header)
			}
			x := &exchange{w: listingWriter{rf: rf}, r: req}
			ok := x.listFields()
			got, isListed := listed(x)
			if ok != isListed || ok != (tc.want != nil) {
				t.Fatalf("listFields %v (listed %v), want %v", ok, isListed, tc.want != nil)
			}
			if ok && !slices.Equal(got, tc.want) {
				t.Fatalf("listed %q, want %q", got, tc.want)
			}
			if ok && x.envoyFields != tc.envoy {
				t.Fatalf("envoyFields %v, want %v", x.envoyFields, tc.envoy)
			}
		})
	}
	x := &exchange{w: struct{ http.ResponseWriter }{}, r: &http.Request{Header: http.Header{}}}
	if x.listFields() {
		t.Fatal("listed the fields of a server that does not list them")
	}
}

// Set, get and delete on listed fields work as on the map, in place; once anything needs
// the map (or the list is full) the map has every field, and later changes go there.
func TestListedFieldsEdits(t *testing.T) {
	req, rf := received("Host", "a", "X-A", "1", "X-B", "2", "X-C", "3")
	x := &exchange{w: listingWriter{rf: rf}, r: req, hdr: http.Header{}}
	x.up.header = x.hdr
	if !x.listFields() {
		t.Fatal("not listed")
	}
	x.upSet("X-B", "two")
	x.upSet("X-D", "4")
	x.upDel("X-A")
	x.upDel("X-None")
	x.upAdd(http1.FieldXRequestID, "X-Request-Id", "id") // the request lacks it (fields unknown: searched)
	if got, _ := listed(x); !slices.Equal(got, []string{"X-B: two", "X-C: 3", "X-D: 4", "X-Request-Id: id"}) {
		t.Fatalf("listed %q", got)
	}
	if x.upGet("X-C") != "3" || x.upGet("X-A") != "" || len(x.up.header) != 0 {
		t.Fatalf("get X-C %q, X-A %q; map %q", x.upGet("X-C"), x.upGet("X-A"), x.up.header)
	}
	a := &x.try
	a.x = x
	if fs := a.RequestFields(); len(fs) != 4 || fs[0] != (http1.Field{Key: "X-B", Value: "two"}) {
		t.Fatalf("RequestFields %q", fs)
	}
	a.FillRequestHeader()
	if a.RequestFields() != nil || x.listed {
		t.Fatal("still listed once the map was filled")
	}
	want := http.Header{"X-B": {"two"}, "X-C": {"3"}, "X-D": {"4"}, "X-Request-Id": {"id"}}
	x.upSet("X-E", "5")
	x.upDel("X-C")
	want["X-E"] = []string{"5"}
	delete(want, "X-C")
	if !equalHeader(x.up.header, want) {
		t.Fatalf("map %q, want %q", x.up.header, want)
	}

	// A full list moves to the map.
	req, rf = received("Host", "a", "X-A", "1")
	x = &exchange{w: listingWriter{rf: rf}, r: req, hdr: http.Header{}}
	x.up.header = x.hdr
	x.listFields()
	for i := range maxListed {
		x.upSet("X-N"+strconv.Itoa(i), "v")
	}
	if x.listed || len(x.up.header) != maxListed+1 || x.up.header.Get("X-A") != "1" || x.up.header.Get("X-N27") != "v" {
		t.Fatalf("after %d sets: listed %v, map of %d", maxListed, x.listed, len(x.up.header))
	}
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// An authorization chain of RBAC policies alone leaves the fields listed; the peer
// metadata written on listed requests holds no line break, whatever the node's name.
func TestListedBehindRBACAndSafePeerMetadata(t *testing.T) {
	req, rf := received("Host", "a", "X-A", "1")
	x := &exchange{w: listingWriter{rf: rf}, r: req, hdr: http.Header{}, authzDecision: &authz.Decision{}}
	x.up.header = x.hdr
	if !x.listFields() {
		t.Fatal("not listed")
	}
	x.applyAuthz()
	if !x.listed || len(x.up.header) != 0 {
		t.Fatal("an RBAC-only decision moved the fields into the map")
	}
	f := New(Options{PeerMetadata: PeerMetadata{ID: "a\r\nb", Value: "v\n"}})
	if f.peerID[0] != "a  b" || f.peerValue[0] != "v " {
		t.Fatalf("peer metadata %q, %q", f.peerID[0], f.peerValue[0])
	}
	// "v " has a space to trim: the answers' writer checks it each time (AddField).
	if f.peerClean {
		t.Error("peer metadata with a trailing space taken as clean")
	}
	if f := New(Options{PeerMetadata: PeerMetadata{ID: "sidecar~10.0.0.1~a.b~b.svc.cluster.local", Value: "Cg4KAm5zEggKBmRlZmF1bHQ="}}); !f.peerClean {
		t.Error("the usual peer metadata not taken as clean")
	}
	for v, clean := range map[string]bool{"": true, "a b": true, "a\tb": true, " a": false, "a\t": false, "a\rb": false, "a\nb": false} {
		if cleanValue(v) != clean {
			t.Errorf("cleanValue(%q) = %v", v, !clean)
		}
	}
}
