package ca

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lucid-mesh/lucid/internal/pki"
)

// Material is a CA's files and where they were read, for errors and logs
// ("secret istio-system/cacerts", "/state/cacerts").
type Material struct {
	Files pki.Files
	Where string
}

// Store is where the CA's key material lives. Plugged and SelfSigned return nil (no
// error) when there is none.
type Store interface {
	// Plugged is the operator's CA (Istio's `cacerts`), which wins over a self-signed one.
	Plugged(ctx context.Context) (*Material, error)
	// SelfSigned is the self-signed CA an earlier start kept (Istio's `istio-ca-secret`).
	SelfSigned(ctx context.Context) (*Material, error)
	// CreateSelfSigned keeps a new self-signed CA and says where. When another replica
	// kept one first it returns an error wrapping ErrExists (Load then uses theirs).
	CreateSelfSigned(ctx context.Context, f pki.Files) (where string, err error)
}

// ErrExists is CreateSelfSigned's answer when a self-signed CA is already kept.
var ErrExists = errors.New("a self-signed CA is already stored")

// Origin says where Load found the CA.
type Origin int

// Origins.
const (
	Plugged Origin = iota + 1 // the operator's cacerts
	Kept                      // the self-signed CA an earlier start created
	Created                   // a new self-signed CA, created and kept now
)

func (o Origin) String() string {
	switch o {
	case Plugged:
		return "plugged-in CA"
	case Kept:
		return "self-signed CA"
	case Created:
		return "new self-signed CA"
	}
	return "unknown"
}

// Loaded is the result of Load.
type Loaded struct {
	Authority *pki.Authority
	Origin    Origin
	Where     string
}

// LoadOptions configure Load.
type LoadOptions struct {
	TrustDomain string        // the new root's organisation, as Istio's; default DefaultTrustDomain
	RootTTL     time.Duration // a new root's lifetime; default DefaultRootTTL
	KeyType     pki.KeyType   // a new root's key
	Now         time.Time     // default time.Now()
}

// Load finds the CA as istiod does: the plugged-in CA when the store has one (an
// incomplete one is an error: Istio refuses to start), else the kept self-signed CA, else
// a new self-signed root created and kept (a replica that loses the creation race reads
// the winner's). Errors name the Secret or file at fault.
func Load(ctx context.Context, s Store, o LoadOptions) (*Loaded, error) {
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if o.RootTTL <= 0 {
		o.RootTTL = DefaultRootTTL
	}
	m, err := s.Plugged(ctx)
	if err != nil {
		return nil, fmt.Errorf("ca: plugged-in CA: %w", err)
	}
	if m != nil {
		return load(m, Plugged)
	}
	for range 2 { // the second round reads what a faster replica kept
		if m, err = s.SelfSigned(ctx); err != nil {
			return nil, fmt.Errorf("ca: self-signed CA: %w", err)
		}
		if m != nil {
			return load(m, Kept)
		}
		a, err := pki.NewRoot(pki.RootOptions{Org: o.TrustDomain, Validity: o.RootTTL, Now: o.Now, KeyType: o.KeyType})
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		f, err := a.Files()
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		where, err := s.CreateSelfSigned(ctx, f)
		if errors.Is(err, ErrExists) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ca: keep the new self-signed CA: %w", err)
		}
		return &Loaded{Authority: a, Origin: Created, Where: where}, nil
	}
	return nil, errors.New("ca: a self-signed CA was reported kept but cannot be read back")
}

func load(m *Material, o Origin) (*Loaded, error) {
	a, err := pki.LoadAuthority(m.Files)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", m.Where, err)
	}
	return &Loaded{Authority: a, Origin: o, Where: m.Where}, nil
}

// The `kubernetes.io/tls` form of cacerts Istio also accepts (cert-manager writes it).
const (
	fileTLSCert = "tls.crt"
	fileTLSKey  = "tls.key"
	fileTLSCA   = "ca.crt"
)

// PluggedFiles reads a plugged-in CA through get (a Secret's data or a directory's
// files) as istiod does: Istio's four files, or the kubernetes.io/tls form (tls.crt,
// tls.key, ca.crt) when tls.crt is present. None of the files: nil. Some but not all: an
// error naming the missing ones.
func PluggedFiles(get func(name string) ([]byte, bool), where string) (*Material, error) {
	if cert, ok := get(fileTLSCert); ok {
		key, kok := get(fileTLSKey)
		root, rok := get(fileTLSCA)
		if missing := names(map[string]bool{fileTLSKey: kok, fileTLSCA: rok}); missing != "" {
			return nil, fmt.Errorf("%s: incomplete plugged-in CA: %s is there but %s missing (the kubernetes.io/tls form needs tls.crt, tls.key and ca.crt)", where, fileTLSCert, missing)
		}
		return &Material{Where: where, Files: pki.Files{CACert: cert, CAKey: key, RootCert: root,
			CertChain: append(append(append([]byte{}, cert...), '\n'), root...)}}, nil
	}
	var f pki.Files
	have := map[string]bool{}
	present := 0
	for name, dst := range map[string]*[]byte{pki.FileCACert: &f.CACert, pki.FileCAKey: &f.CAKey, pki.FileCertChain: &f.CertChain, pki.FileRootCert: &f.RootCert} {
		*dst, have[name] = get(name)
		if have[name] {
			present++
		}
	}
	missing := names(have)
	switch present {
	case 0:
		return nil, nil
	case len(have):
		return &Material{Files: f, Where: where}, nil
	}
	return nil, fmt.Errorf("%s: incomplete plugged-in CA: %s missing (Istio's cacerts needs ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem)", where, missing)
}

// names lists the keys whose value is false, sorted, comma-separated.
func names(have map[string]bool) string {
	var out []string
	for _, n := range []string{pki.FileCACert, pki.FileCAKey, pki.FileCertChain, pki.FileRootCert, fileTLSKey, fileTLSCA} {
		if ok, in := have[n]; in && !ok {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// DirStore keeps the CA in a local state directory (`lucid up`, `lucid discovery` without
// Kubernetes):
//
//	<Dir>/cacerts/    a plugged-in CA the operator puts there (Istio's file names)
//	<Dir>/istio-ca/   the self-signed CA Lucid creates: ca-cert.pem, root-cert.pem,
//	                  ca-key.pem (mode 0600, the directory 0700)
type DirStore struct{ Dir string }

var _ Store = DirStore{}

// Subdirectories of a DirStore.
const (
	DirPlugged    = "cacerts"
	DirSelfSigned = "istio-ca"
)

// Plugged reads <Dir>/cacerts.
func (d DirStore) Plugged(context.Context) (*Material, error) {
	return d.read(filepath.Join(d.Dir, DirPlugged), true)
}

// SelfSigned reads <Dir>/istio-ca.
func (d DirStore) SelfSigned(context.Context) (*Material, error) {
	return d.read(filepath.Join(d.Dir, DirSelfSigned), false)
}

func (d DirStore) read(dir string, plugged bool) (*Material, error) {
	var readErr error
	get := func(name string) ([]byte, bool) {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false
		}
		if err == nil && (name == pki.FileCAKey || name == fileTLSKey) {
			err = checkKeyMode(p)
		}
		if err != nil && readErr == nil {
			readErr = err
		}
		return b, err == nil
	}
	if plugged {
		m, err := PluggedFiles(get, dir)
		if readErr != nil {
			return nil, readErr
		}
		return m, err
	}
	var f pki.Files
	var ok bool
	if f.CACert, ok = get(pki.FileCACert); !ok {
		return nil, readErr
	}
	if f.CAKey, ok = get(pki.FileCAKey); !ok {
		if readErr != nil {
			return nil, readErr
		}
		return nil, fmt.Errorf("%s: %s is there but %s is missing (delete the directory to have Lucid create a new CA)", dir, pki.FileCACert, pki.FileCAKey)
	}
	f.RootCert, _ = get(pki.FileRootCert)
	f.CertChain, _ = get(pki.FileCertChain)
	return &Material{Files: f, Where: dir}, readErr
}

// checkKeyMode refuses a CA key other users can read, as ssh refuses such keys.
func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by other users (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return nil
}

// CreateSelfSigned writes the CA into a new directory beside <Dir>/istio-ca and renames
// it into place: a reader never sees half a CA, and a second writer gets ErrExists.
func (d DirStore) CreateSelfSigned(_ context.Context, f pki.Files) (string, error) {
	final := filepath.Join(d.Dir, DirSelfSigned)
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(d.Dir, ".istio-ca-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{pki.FileCAKey, f.CAKey, 0o600},
		{pki.FileCACert, f.CACert, 0o644},
		{pki.FileRootCert, f.RootCert, 0o644},
	}
	for _, w := range files {
		if err := os.WriteFile(filepath.Join(tmp, w.name), w.data, w.mode); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(filepath.Join(final, pki.FileCACert)); serr == nil {
			return "", fmt.Errorf("%s: %w", final, ErrExists)
		}
		return "", err
	}
	return final, nil
}
