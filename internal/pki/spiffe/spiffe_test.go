package spiffe

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	id, err := Parse("spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
	if err != nil {
		t.Fatal(err)
	}
	want := ID{TrustDomain: "cluster.local", Namespace: "default", ServiceAccount: "bookinfo-reviews"}
	if id != want {
		t.Fatalf("Parse = %+v, want %+v", id, want)
	}
	if id.String() != "spiffe://cluster.local/ns/default/sa/bookinfo-reviews" || id.URL().String() != id.String() {
		t.Errorf("String %q, URL %q", id.String(), id.URL())
	}
	tests := []struct{ in, want string }{
		{"", "does not start with spiffe://"},
		{"https://cluster.local/ns/a/sa/b", "does not start with spiffe://"},
		{"spiffe://cluster.local/ns/a/sa", "is not spiffe://<trust domain>/ns/<namespace>/sa/<service account>"},
		{"spiffe://cluster.local/ns/a/sa/b/c", "is not spiffe://"},
		{"spiffe://cluster.local/sa/a/ns/b", "is not spiffe://"},
		{"spiffe:///ns/a/sa/b", "empty trust domain"},
		{"spiffe://Cluster.local/ns/a/sa/b", `character 'C' not allowed`},
		{"spiffe://cluster.local/ns//sa/b", "empty namespace"},
		{"spiffe://cluster.local/ns/a/sa/..", `service account ".." is not a valid path segment`},
		{"spiffe://cluster.local/ns/a b/sa/c", `character ' ' not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error = %v, want it to mention %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestFromCertificate(t *testing.T) {
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	one := &x509.Certificate{URIs: []*url.URL{u("https://example.com"), u("spiffe://td/ns/a/sa/b")}}
	if id, err := FromCertificate(one); err != nil || id.ServiceAccount != "b" {
		t.Errorf("one SPIFFE URI: %+v %v", id, err)
	}
	if _, err := FromCertificate(&x509.Certificate{}); err == nil || !strings.Contains(err.Error(), "no spiffe:// URI SAN") {
		t.Errorf("none: %v", err)
	}
	two := &x509.Certificate{URIs: []*url.URL{u("spiffe://td/ns/a/sa/b"), u("spiffe://td/ns/a/sa/c")}}
	if _, err := FromCertificate(two); err == nil || !strings.Contains(err.Error(), "2 spiffe:// URI SANs") {
		t.Errorf("two: %v", err)
	}
}

// FuzzParse: Parse never panics, and what it accepts prints back to the same string.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"spiffe://cluster.local/ns/default/sa/x", "spiffe://td/ns/a/sa/b/", "spiffe://", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, id.String())
		}
		if again, err := Parse(id.URL().String()); err != nil || again != id {
			t.Fatalf("URL round trip of %q: %+v %v", s, again, err)
		}
	})
}
