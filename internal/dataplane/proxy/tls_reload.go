package proxy

import (
	"crypto/tls"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/lucid-mesh/lucid/internal/contract/filestamp"
	"github.com/lucid-mesh/lucid/internal/dataplane/resource"
)

// Certificate files that change under a running gateway. A chain whose certificate or
// client CA comes from files (Gateway tls.serverCertificate/privateKey/caCertificates, or
// a local-mode credentialName) checks the files at every handshake: when one changed
// since it was last read (size, modification time, or the file itself, as a Kubernetes
// volume's symlink swap replaces it), they are read again and the new certificate is
// served to that connection and the ones after it; open connections keep theirs. This is
// what Istio's agent does for a gateway's mounted certificate files, without waiting for
// the next configuration push. A change that does not load (a key that does not match
// the certificate yet, a file half written or removed) keeps the last good certificate
// and is logged once per change, naming the listener, the chain and the reason.
//
// A stat per file per handshake is the whole cost: a handshake's key exchange costs a
// thousand times more.

// fileTLS is the reloading server configuration of one chain.
type fileTLS struct {
	d     *resource.DownstreamTLS
	files []string
	log   *slog.Logger
	where []any // log attributes naming the listener and the chain

	cur atomic.Pointer[fileTLSState]
	mu  sync.Mutex // serializes reloads
}

// fileTLSState is the configuration in force and the files' state it was tried at.
type fileTLSState struct {
	cfg   *tls.Config
	stamp []fileStamp
}

// fileStamp is one file's state: its stamp, or why it could not be stat'ed.
type fileStamp struct {
	stamp filestamp.Stamp
	err   string
}

// certificateFiles are the files a TLS context reads.
func certificateFiles(d *resource.DownstreamTLS) []string {
	var out []string
	for _, cp := range d.Certificates {
		for _, ds := range []resource.DataSource{cp.Chain, cp.PrivateKey} {
			if ds.Filename != "" {
				out = append(out, ds.Filename)
			}
		}
	}
	if d.TrustedCA.Filename != "" {
		out = append(out, d.TrustedCA.Filename)
	}
	return out
}

// reloadingTLS returns the chain's configuration: cfg itself when it reads no file, else
// a configuration that reloads the files when they change. stamp is the files' state
// taken before cfg was built.
func reloadingTLS(d *resource.DownstreamTLS, cfg *tls.Config, stamp []fileStamp, log *slog.Logger, where ...any) *tls.Config {
	files := certificateFiles(d)
	if len(files) == 0 {
		return cfg
	}
	f := &fileTLS{d: d, files: files, log: log, where: where}
	f.cur.Store(&fileTLSState{cfg: cfg, stamp: stamp})
	return &tls.Config{GetConfigForClient: f.config, MinVersion: cfg.MinVersion}
}

// stampFiles stats every file.
func stampFiles(files []string) []fileStamp {
	out := make([]fileStamp, len(files))
	for i, name := range files {
		st, err := filestamp.Stat(name)
		if err != nil {
			out[i].err = err.Error()
			continue
		}
		out[i].stamp = st
	}
	return out
}

func sameStamps(a, b []fileStamp) bool { return slices.Equal(a, b) }

// config is the handshake's configuration (tls.Config.GetConfigForClient).
func (f *fileTLS) config(*tls.ClientHelloInfo) (*tls.Config, error) {
	st := f.cur.Load()
	now := stampFiles(f.files)
	if sameStamps(st.stamp, now) {
		return st.cfg, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st = f.cur.Load(); sameStamps(st.stamp, now) {
		return st.cfg, nil // another handshake reloaded them
	}
	cfg, err := serverTLSConfig(f.d)
	if err != nil {
		f.cur.Store(&fileTLSState{cfg: st.cfg, stamp: now})
		f.log.Warn("certificate files changed but do not load; the last good certificate keeps serving",
			append(f.where, "error", err.Error())...)
		return st.cfg, nil
	}
	f.cur.Store(&fileTLSState{cfg: cfg, stamp: now})
	f.log.Info("certificate files changed; new connections get the new certificate", f.where...)
	return cfg, nil
}

// fileChainTLS builds a chain's configuration from files (or inline PEM), reloading
// the files when they change.
func fileChainTLS(d *resource.DownstreamTLS, log *slog.Logger, listener, chain string) (*tls.Config, error) {
	stamp := stampFiles(certificateFiles(d))
	cfg, err := serverTLSConfig(d)
	if err != nil {
		return nil, err
	}
	return reloadingTLS(d, cfg, stamp, log, "listener", listener, "filter_chain", chain), nil
}
