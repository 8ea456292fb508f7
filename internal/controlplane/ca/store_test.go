package ca

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// TestDirStorePersists: the first start creates the root with private modes, a restart
// keeps it (workloads' certificates stay trusted), and concurrent first starts agree on
// one root.
func TestDirStorePersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	first, err := Load(ctx, DirStore{Dir: dir}, LoadOptions{TrustDomain: "example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Origin != Created || first.Where != filepath.Join(dir, DirSelfSigned) {
		t.Fatalf("first start: %s from %s", first.Origin, first.Where)
	}
	if org := first.Authority.Cert.Subject.Organization; len(org) != 1 || org[0] != "example.org" {
		t.Errorf("root organisation %v, want the trust domain", org)
	}
	if got := first.Authority.Cert.NotAfter.Sub(first.Authority.Cert.NotBefore); got != DefaultRootTTL+pki.ClockSkew {
		t.Errorf("root lifetime %s, want %s", got, DefaultRootTTL)
	}
	modes := map[string]os.FileMode{
		dir: 0o700, filepath.Join(dir, DirSelfSigned): 0o700,
		filepath.Join(dir, DirSelfSigned, pki.FileCAKey):    0o600,
		filepath.Join(dir, DirSelfSigned, pki.FileCACert):   0o644,
		filepath.Join(dir, DirSelfSigned, pki.FileRootCert): 0o644,
	}
	for p, want := range modes {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	again, err := Load(ctx, DirStore{Dir: dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Origin != Kept || !again.Authority.Cert.Equal(first.Authority.Cert) {
		t.Fatalf("restart: %s, same root %v", again.Origin, again.Authority.Cert.Equal(first.Authority.Cert))
	}
	// A certificate issued before the restart verifies with the roots after it.
	c1, _ := New(first.Authority, Options{})
	chain, err := c1.Sign(csrFor(t), reviews, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := New(again.Authority, Options{})
	if string(c2.RootsPEM()) != chain[len(chain)-1] {
		t.Error("the restarted CA's roots differ from the root the earlier certificate came with")
	}

	race := filepath.Join(t.TempDir(), "race")
	var wg sync.WaitGroup
	roots := make([]string, 4)
	for i := range roots {
		wg.Go(func() {
			l, err := Load(ctx, DirStore{Dir: race}, LoadOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			roots[i] = string(pki.EncodeCerts(l.Authority.Cert))
		})
	}
	wg.Wait()
	for _, r := range roots[1:] {
		if r != roots[0] {
			t.Fatal("concurrent first starts ended with different roots")
		}
	}
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDirStorePlugged: an operator's cacerts wins over the self-signed CA; an incomplete
// or world-readable one is refused with the file named.
func TestDirStorePlugged(t *testing.T) {
	ctx := context.Background()
	root, _ := pki.NewRoot(pki.RootOptions{Org: "corp", Validity: 24 * time.Hour})
	inter := intermediate(t, root)
	f, err := inter.Files()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := pki.NewRoot(pki.RootOptions{Org: "other", Validity: time.Hour})
	otherRoot := pki.EncodeCerts(other.Cert)
	dir := t.TempDir()
	if _, err := Load(ctx, DirStore{Dir: dir}, LoadOptions{}); err != nil { // a self-signed CA exists too
		t.Fatal(err)
	}
	plugged := filepath.Join(dir, DirPlugged)
	writeFiles(t, plugged, map[string][]byte{pki.FileCACert: f.CACert, pki.FileCAKey: f.CAKey, pki.FileCertChain: f.CertChain, pki.FileRootCert: f.RootCert})
	l, err := Load(ctx, DirStore{Dir: dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Origin != Plugged || !l.Authority.Cert.Equal(inter.Cert) || l.Where != plugged {
		t.Fatalf("loaded %s from %s, want the plugged intermediate", l.Origin, l.Where)
	}

	tests := []struct {
		name  string
		files map[string][]byte
		mode  os.FileMode
		want  string
	}{
		{"incomplete", map[string][]byte{pki.FileCACert: f.CACert, pki.FileCAKey: f.CAKey}, 0o600,
			"incomplete plugged-in CA: cert-chain.pem, root-cert.pem missing"},
		{"readable key", map[string][]byte{pki.FileCACert: f.CACert, pki.FileCAKey: f.CAKey, pki.FileCertChain: f.CertChain, pki.FileRootCert: f.RootCert}, 0o644,
			"ca-key.pem is readable by other users (mode 0644): run chmod 600"},
		{"wrong root", map[string][]byte{pki.FileCACert: f.CACert, pki.FileCAKey: f.CAKey, pki.FileCertChain: f.CACert, pki.FileRootCert: otherRoot}, 0o600,
			"ca-cert.pem does not chain to root-cert.pem"},
		{"tls form, incomplete", map[string][]byte{"tls.crt": f.CACert, "tls.key": f.CAKey}, 0o600,
			"tls.crt is there but ca.crt missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			writeFiles(t, filepath.Join(d, DirPlugged), tt.files)
			for name := range tt.files {
				_ = os.Chmod(filepath.Join(d, DirPlugged, name), tt.mode)
			}
			_, err := Load(ctx, DirStore{Dir: d}, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), filepath.Join(d, DirPlugged)) {
				t.Fatalf("error = %v, want it to name the directory and mention %q", err, tt.want)
			}
		})
	}

	tlsForm := t.TempDir()
	writeFiles(t, filepath.Join(tlsForm, DirPlugged), map[string][]byte{"tls.crt": f.CACert, "tls.key": f.CAKey, "ca.crt": f.RootCert})
	if l, err := Load(ctx, DirStore{Dir: tlsForm}, LoadOptions{}); err != nil || l.Origin != Plugged {
		t.Errorf("kubernetes.io/tls form: %v", err)
	}
}

// flakyStore loses the creation race once: another replica keeps its CA first.
type flakyStore struct {
	DirStore
	other pki.Files
	once  sync.Once
}

func (s *flakyStore) CreateSelfSigned(ctx context.Context, _ pki.Files) (string, error) {
	var err error
	s.once.Do(func() {
		_, err = s.DirStore.CreateSelfSigned(ctx, s.other)
	})
	if err != nil {
		return "", err
	}
	return "", errors.Join(errors.New("lost the race"), ErrExists)
}

func TestLoadLosesCreationRace(t *testing.T) {
	theirs, _ := pki.NewRoot(pki.RootOptions{Validity: time.Hour})
	f, _ := theirs.Files()
	s := &flakyStore{DirStore: DirStore{Dir: t.TempDir()}, other: f}
	l, err := Load(context.Background(), s, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Origin != Kept || !l.Authority.Cert.Equal(theirs.Cert) {
		t.Fatalf("%s, want the winner's CA", l.Origin)
	}
}
