package webhook

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/kube/selfcert"
	"github.com/lucid-mesh/lucid/internal/testutil"
)

func TestCreatePatch(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"equal", `{"a":1}`, `{"a":1}`, `null`},
		{"add key with slash and tilde", `{"m":{}}`, `{"m":{"a/b~c":"x"}}`, `[{"op":"add","path":"/m/a~1b~0c","value":"x"}]`},
		{"remove key", `{"a":1,"b":2}`, `{"a":1}`, `[{"op":"remove","path":"/b"}]`},
		{"replace scalar", `{"a":1}`, `{"a":"1"}`, `[{"op":"replace","path":"/a","value":"1"}]`},
		{"replace with null", `{"a":1}`, `{"a":null}`, `[{"op":"replace","path":"/a","value":null}]`},
		{"append", `{"l":[1]}`, `{"l":[1,2,3]}`, `[{"op":"add","path":"/l/1","value":2},{"op":"add","path":"/l/2","value":3}]`},
		{"shrink", `{"l":[1,2,3]}`, `{"l":[1]}`, `[{"op":"remove","path":"/l/2"},{"op":"remove","path":"/l/1"}]`},
		{"type change", `{"a":{"b":1}}`, `{"a":[1]}`, `[{"op":"replace","path":"/a","value":[1]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := CreatePatch([]byte(tt.from), []byte(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(ops)
			if string(got) != tt.want {
				t.Fatalf("patch %s, want %s", got, tt.want)
			}
			checkRoundTrip(t, []byte(tt.from), []byte(tt.to), got)
		})
	}
}

func checkRoundTrip(t *testing.T, from, to, patch []byte) {
	t.Helper()
	if string(patch) == "null" {
		patch = []byte("[]")
	}
	out, err := applyPatch(from, patch)
	if err != nil {
		t.Fatalf("apply: %v (patch %s)", err, patch)
	}
	var a, b any
	_ = json.Unmarshal(out, &a)
	_ = json.Unmarshal(to, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("patched %s, want %s (patch %s)", out, to, patch)
	}
}

// FuzzCreatePatch: for any two JSON documents, the patch turns the first into the second.
func FuzzCreatePatch(f *testing.F) {
	f.Add(`{"a":[1,{"b":2}],"c":"x"}`, `{"a":[{"b":3}],"d/e":null}`)
	f.Add(`[1,2]`, `{"x":[]}`)
	f.Fuzz(func(t *testing.T, from, to string) {
		if !json.Valid([]byte(from)) || !json.Valid([]byte(to)) {
			return
		}
		ops, err := CreatePatch([]byte(from), []byte(to))
		if err != nil {
			return
		}
		p, _ := json.Marshal(ops)
		checkRoundTrip(t, []byte(from), []byte(to), p)
	})
}

// FuzzDecodeReview: no input crashes the review and pod decoding, and a decoded review
// always has a request with a uid.
func FuzzDecodeReview(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"namespace":"default","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":null}}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ar, err := DecodeReview(body)
		if err != nil {
			return
		}
		if ar.Request == nil || ar.Request.UID == "" {
			t.Fatal("decoded review without request uid")
		}
		pod, err := DecodePod(ar.Request)
		if err == nil && pod == nil {
			t.Fatal("nil pod without error")
		}
	})
}

// TestAdmissionAcrossRotation: the API server's kept-alive connection keeps getting answers
// while the serving certificate is renewed under it.
func TestAdmissionAcrossRotation(t *testing.T) {
	s := startServer(t, &Handler{Config: testConfig, Namespaces: testNamespaces()}, "127.0.99.13",
		selfcert.RotatorOptions{Validity: 3 * time.Second, RenewBefore: 2500 * time.Millisecond})
	body := review(t, jettyPod("default"), "default")
	testutil.EventuallyWhy(t, 10*time.Second, "two rotations", func() (bool, string) {
		code, ar, raw := s.post(t, "/inject", "application/json", body)
		if code != 200 || !ar.Response.Allowed || len(ar.Response.Patch) == 0 {
			t.Fatalf("admission failed across rotation: %d %s", code, raw)
		}
		n := s.certs.Rotations()
		return n >= 2, fmt.Sprintf("%d so far", n)
	})
}
