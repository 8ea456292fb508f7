package file

import (
	"crypto/sha256"
	"os"
	"path/filepath"

	"github.com/lucid-mesh/lucid/internal/controlplane/config"
)

// credentialNames hashes which files exist in the config directory's credentials
// directories (config.CredentialsDir/<name>/<file>), so that a scan sees a Gateway
// credential appear or disappear and resolves its Gateways again. Their content is not
// hashed: the gateway reads changed certificate files itself, at its next handshake.
func credentialNames(dir string) [sha256.Size]byte {
	h := sha256.New()
	root := filepath.Join(dir, config.CredentialsDir)
	creds, _ := os.ReadDir(root) // no directory: nothing to hash
	for _, c := range creds {
		if !c.IsDir() {
			continue
		}
		files, _ := os.ReadDir(filepath.Join(root, c.Name()))
		for _, f := range files {
			if !config.IsCredentialFile(f.Name()) {
				continue // an editor's or an atomic writer's temporary file
			}
			h.Write([]byte(c.Name() + "/" + f.Name() + "\x00"))
		}
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
