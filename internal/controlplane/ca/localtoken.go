package ca

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lucid-mesh/lucid/internal/contract/filestamp"
	"github.com/lucid-mesh/lucid/internal/pki/spiffe"
)

// Local mode has no Kubernetes to vouch for a workload, so `lucid up` gives each sidecar a
// random token of its own (IssueLocalToken) and the CA accepts it as that workload's
// service account (LocalTokens). The tokens file holds SHA-256 digests only: reading it
// gives nothing to present. The token itself goes only to the workload's sidecar.

// LocalTokenPrefix starts every local workload token, so a misrouted one is recognisable
// in a report without being usable.
const LocalTokenPrefix = "lucid-local."

// LocalTokenRecord is one workload's entry in the tokens file.
type LocalTokenRecord struct {
	Workload       string `json:"workload"` // <namespace>/<name> of the WorkloadEntry
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	SHA256         string `json:"sha256"` // hex digest of the token
}

type localTokenFile struct {
	Tokens []LocalTokenRecord `json:"tokens"`
}

// maxTokensFile bounds what ParseLocalTokens reads (about 200 bytes a workload).
const maxTokensFile = 16 << 20

// ParseLocalTokens reads a tokens file. Every problem names the entry.
func ParseLocalTokens(b []byte) ([]LocalTokenRecord, error) {
	if len(b) > maxTokensFile {
		return nil, fmt.Errorf("%d bytes: larger than the %d a tokens file can be", len(b), maxTokensFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f localTokenFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("malformed tokens file: %w", err)
	}
	seenHash := map[string]bool{}
	seenWL := map[string]bool{}
	for i, r := range f.Tokens {
		where := fmt.Sprintf("tokens[%d] (workload %q)", i, r.Workload)
		if r.Workload == "" {
			return nil, fmt.Errorf("%s: no workload", where)
		}
		if err := (spiffe.ID{TrustDomain: "x", Namespace: r.Namespace, ServiceAccount: r.ServiceAccount}).Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if d, err := hex.DecodeString(r.SHA256); err != nil || len(d) != sha256.Size {
			return nil, fmt.Errorf("%s: sha256 is not %d hex digits", where, 2*sha256.Size)
		}
		if seenHash[strings.ToLower(r.SHA256)] {
			return nil, fmt.Errorf("%s: the same token digest is listed twice", where)
		}
		if seenWL[r.Workload] {
			return nil, fmt.Errorf("%s: the workload is listed twice", where)
		}
		seenHash[strings.ToLower(r.SHA256)], seenWL[r.Workload] = true, true
	}
	return f.Tokens, nil
}

// IssueLocalToken makes a new token for workload (namespace/name) with identity
// namespace/serviceAccount, records its digest in the tokens file at path (created mode
// 0600; the workload's previous token, if any, stops working) and returns the token to
// hand to that workload's sidecar only. Calls must not run concurrently on one file.
func IssueLocalToken(path, workload, namespace, serviceAccount string) (string, error) {
	if workload == "" {
		return "", errors.New("ca: local token: no workload name")
	}
	if err := (spiffe.ID{TrustDomain: "x", Namespace: namespace, ServiceAccount: serviceAccount}).Validate(); err != nil {
		return "", fmt.Errorf("ca: local token for %s: %w", workload, err)
	}
	var recs []LocalTokenRecord
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("ca: local token: %w", err)
	default:
		if recs, err = ParseLocalTokens(b); err != nil {
			return "", fmt.Errorf("ca: local token: %s: %w", path, err)
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("ca: local token: %w", err)
	}
	token := LocalTokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	recs = slices.DeleteFunc(recs, func(r LocalTokenRecord) bool { return r.Workload == workload })
	recs = append(recs, LocalTokenRecord{Workload: workload, Namespace: namespace, ServiceAccount: serviceAccount, SHA256: hex.EncodeToString(sum[:])})
	out, err := json.MarshalIndent(localTokenFile{Tokens: recs}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("ca: local token: %w", err)
	}
	if err := writeAtomic(path, append(out, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("ca: local token: %w", err)
	}
	return token, nil
}

// writeAtomic replaces path with data through a temporary file and a rename, so a reader
// sees the old or the new file, never half of one.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	return nil
}

// LocalTokens authenticates local-mode workloads by their token against the tokens file
// IssueLocalToken writes. The file is read again when it changes (a workload added or
// restarted by `lucid up`), so the CA needs no restart.
type LocalTokens struct {
	path, trustDomain string

	mu     sync.Mutex      // guards the fields below
	loaded filestamp.Stamp // of the file byHash was read from (byHash nil: none yet)
	byHash map[[sha256.Size]byte]LocalTokenRecord
}

// NewLocalTokens reads tokens from the file at path; identities are in trustDomain
// (default DefaultTrustDomain).
func NewLocalTokens(path, trustDomain string) *LocalTokens {
	return &LocalTokens{path: path, trustDomain: orDefault(trustDomain, DefaultTrustDomain)}
}

// Authenticate implements Authenticator.
func (l *LocalTokens) Authenticate(ctx context.Context) (spiffe.ID, error) {
	tok, err := BearerToken(ctx)
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("local workload token: %w", err)
	}
	sum := sha256.Sum256([]byte(tok))
	rec, ok, err := l.lookup(sum)
	if err != nil {
		return spiffe.ID{}, fmt.Errorf("local workload token: %w", err)
	}
	if !ok {
		return spiffe.ID{}, errors.New("local workload token: unknown token (`lucid up` issues a new one each time it starts a sidecar)")
	}
	return spiffe.ID{TrustDomain: l.trustDomain, Namespace: rec.Namespace, ServiceAccount: rec.ServiceAccount}, nil
}

func (l *LocalTokens) lookup(sum [sha256.Size]byte) (LocalTokenRecord, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	stamp, err := filestamp.Stat(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return LocalTokenRecord{}, false, fmt.Errorf("no workload token issued yet (%s does not exist)", l.path)
	}
	if err != nil {
		return LocalTokenRecord{}, false, fmt.Errorf("tokens file: %w", err)
	}
	if l.byHash == nil || stamp != l.loaded {
		b, err := os.ReadFile(l.path)
		if err != nil {
			return LocalTokenRecord{}, false, fmt.Errorf("tokens file: %w", err)
		}
		recs, err := ParseLocalTokens(b)
		if err != nil {
			return LocalTokenRecord{}, false, fmt.Errorf("tokens file %s: %w", l.path, err)
		}
		l.byHash = make(map[[sha256.Size]byte]LocalTokenRecord, len(recs))
		for _, r := range recs {
			var h [sha256.Size]byte
			hex.Decode(h[:], []byte(r.SHA256)) //nolint:errcheck // ParseLocalTokens checked the digits
			l.byHash[h] = r
		}
		l.loaded = stamp
	}
	// Looked up by digest: whatever the lookup's timing reveals is about the digest of a
	// guess, which says nothing about a valid token.
	rec, ok := l.byHash[sum]
	return rec, ok, nil
}
