package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lucid-mesh/lucid/internal/kube/selfcert"
)

// staticNamespaces is the namespace labels of the unit tests; "broken" fails.
type staticNamespaces map[string]map[string]string

func (s staticNamespaces) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	if name == "broken" {
		return nil, errors.New("namespaces \"broken\" is forbidden")
	}
	l, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("namespaces %q not found", name)
	}
	return l, nil
}

// tlsServer runs Serve on 127.0.99.x with a fresh CA and returns the base URL and a client
// trusting the CA.
type tlsServer struct {
	url    string
	client *http.Client
	certs  *selfcert.Rotator
}

func startServer(t *testing.T, h *Handler, ip string, ro selfcert.RotatorOptions) *tlsServer {
	t.Helper()
	ca, err := selfcert.NewAuthority("test-ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ro.IPs = append(ro.IPs, net.ParseIP(ip))
	certs, err := selfcert.NewRotator(ca, ro)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, ServerOptions{Handler: h, Certs: certs}) }()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &tlsServer{url: "https://" + ln.Addr().String(), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, certs: certs}
}

// post sends body and returns the status, the decoded review (if any) and the raw body.
func (s *tlsServer) post(t *testing.T, path, contentType string, body []byte) (int, *admissionv1.AdmissionReview, string) {
	t.Helper()
	resp, err := s.client.Post(s.url+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, string(raw)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(raw, &ar); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v: %s", err, raw)
	}
	return resp.StatusCode, &ar, string(raw)
}

func review(t *testing.T, pod *corev1.Pod, ns string) []byte {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	ar := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "0d0e0a0d-uid",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	b, err := json.Marshal(ar)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// applyPatch applies an RFC 6902 patch (add, remove, replace, test) to doc.
func applyPatch(doc []byte, patch []byte) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, err
	}
	for _, op := range ops {
		var v any
		if op.Op != "remove" {
			if err := json.Unmarshal(op.Value, &v); err != nil {
				return nil, fmt.Errorf("%s %s: value: %w", op.Op, op.Path, err)
			}
		}
		var err error
		root, err = applyOp(root, splitPointer(op.Path), op.Op, v)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", op.Op, op.Path, err)
		}
	}
	return json.Marshal(root)
}

func splitPointer(p string) []string {
	if p == "" {
		return nil
	}
	parts := strings.Split(p[1:], "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts
}

func applyOp(node any, path []string, op string, v any) (any, error) {
	if len(path) == 0 {
		if op == "test" {
			return node, nil
		}
		return v, nil
	}
	key, rest := path[0], path[1:]
	switch n := node.(type) {
	case map[string]any:
		child, ok := n[key]
		if len(rest) == 0 {
			switch op {
			case "add":
				n[key] = v
			case "replace", "test":
				if !ok {
					return nil, fmt.Errorf("no member %q", key)
				}
				if op == "replace" {
					n[key] = v
				}
			case "remove":
				if !ok {
					return nil, fmt.Errorf("no member %q", key)
				}
				delete(n, key)
			}
			return n, nil
		}
		if !ok {
			return nil, fmt.Errorf("no member %q", key)
		}
		c, err := applyOp(child, rest, op, v)
		n[key] = c
		return n, err
	case []any:
		i, err := strconv.Atoi(key)
		if key == "-" {
			i, err = len(n), nil
		}
		if err != nil || i < 0 || i > len(n) {
			return nil, fmt.Errorf("bad index %q", key)
		}
		if len(rest) == 0 {
			switch op {
			case "add":
				return append(n[:i], append([]any{v}, n[i:]...)...), nil
			case "remove":
				if i == len(n) {
					return nil, fmt.Errorf("bad index %q", key)
				}
				return append(n[:i], n[i+1:]...), nil
			case "replace":
				if i == len(n) {
					return nil, fmt.Errorf("bad index %q", key)
				}
				n[i] = v
			}
			return n, nil
		}
		if i == len(n) {
			return nil, fmt.Errorf("bad index %q", key)
		}
		c, err := applyOp(n[i], rest, op, v)
		n[i] = c
		return n, err
	}
	return nil, fmt.Errorf("cannot descend into %T at %q", node, key)
}
