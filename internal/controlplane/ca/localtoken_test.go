package ca

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

func withToken(tok string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
}

func TestLocalTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "workload-tokens.json")
	reviewsTok, err := IssueLocalToken(path, "default/reviews-v1", "default", "bookinfo-reviews")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens file: %v, mode %04o, want 0600", err, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), strings.TrimPrefix(reviewsTok, LocalTokenPrefix)) {
		t.Fatal("the tokens file holds the token itself")
	}
	lt := NewLocalTokens(path, "cluster.local")
	id, err := lt.Authenticate(withToken(reviewsTok))
	if err != nil || id != reviews {
		t.Fatalf("reviews' token: %v %v", id, err)
	}

	// A workload added later is found without a restart; a reissued token revokes the old.
	ratingsTok, err := IssueLocalToken(path, "default/ratings-v1", "default", "bookinfo-ratings")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := lt.Authenticate(withToken(ratingsTok)); err != nil || id.ServiceAccount != "bookinfo-ratings" {
		t.Fatalf("ratings' token after the file changed: %v %v", id, err)
	}
	newReviews, err := IssueLocalToken(path, "default/reviews-v1", "default", "bookinfo-reviews")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lt.Authenticate(withToken(reviewsTok)); err == nil || !strings.Contains(err.Error(), "unknown token") {
		t.Errorf("a replaced token still authenticates: %v", err)
	}
	if _, err := lt.Authenticate(withToken(newReviews)); err != nil {
		t.Errorf("the new token: %v", err)
	}

	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no metadata", context.Background(), "no authorization metadata"},
		{"not bearer", metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Basic eDp5")), "not `Bearer <token>`"},
		{"guessed", withToken(LocalTokenPrefix + "AAAA"), "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lt.Authenticate(tt.ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}

	if err := os.WriteFile(path, []byte(`{"tokens":[{"workload":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := lt.Authenticate(withToken(newReviews)); err == nil || !strings.Contains(err.Error(), `tokens[0] (workload "x"): spiffe: empty namespace`) {
		t.Errorf("a broken tokens file: %v", err)
	}
}

func TestParseLocalTokens(t *testing.T) {
	const h = "a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"
	tests := []struct{ in, want string }{
		{`nope`, "malformed tokens file"},
		{`{"tokens":[],"extra":1}`, `unknown field "extra"`},
		{`{"tokens":[{"namespace":"a","serviceAccount":"b","sha256":"` + h + `"}]}`, "no workload"},
		{`{"tokens":[{"workload":"w","namespace":"a","serviceAccount":"b","sha256":"abc"}]}`, "sha256 is not 64 hex digits"},
		{`{"tokens":[{"workload":"w","namespace":"a","serviceAccount":"b","sha256":"` + h + `"},{"workload":"v","namespace":"a","serviceAccount":"b","sha256":"` + h + `"}]}`, "the same token digest is listed twice"},
		{`{"tokens":[{"workload":"w","namespace":"a","serviceAccount":"b/c","sha256":"` + h + `"}]}`, `character '/' not allowed`},
	}
	for _, tt := range tests {
		_, err := ParseLocalTokens([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseLocalTokens(%s) = %v, want it to mention %q", tt.in, err, tt.want)
		}
	}
	if _, err := IssueLocalToken(filepath.Join(t.TempDir(), "t"), "w", "default", ""); err == nil {
		t.Error("a token for an empty service account")
	}
}

// FuzzParseLocalTokens: the tokens file parser never panics, and every record it
// accepts is a valid identity.
func FuzzParseLocalTokens(f *testing.F) {
	f.Add([]byte(`{"tokens":[{"workload":"default/a","namespace":"default","serviceAccount":"a","sha256":"a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3"}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"tokens":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseLocalTokens(b)
		if err != nil {
			return
		}
		for _, r := range recs {
			if err := (spiffe.ID{TrustDomain: "td", Namespace: r.Namespace, ServiceAccount: r.ServiceAccount}).Validate(); err != nil {
				t.Fatalf("accepted %+v: %v", r, err)
			}
		}
	})
}
