package kubetest

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// startControllers runs kube-controller-manager with the admin kubeconfig, serving its
// health endpoint on port with the API server's certificate, and waits until it is healthy.
func (c *Cluster) startControllers(ctx context.Context, o Options, p *pki, port int, tr http.RoundTripper) error {
	caFile := filepath.Join(c.Dir, "ca.crt")
	if err := os.WriteFile(caFile, p.caPEM, 0o600); err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--controllers=" + strings.Join(o.Controllers, ","),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.serving,
		"--service-account-private-key-file=" + p.saKey,
		"--root-ca-file=" + caFile,
		"--profiling=false",
	}
	var err error
	c.controllers, err = startProc("kube-controller-manager", filepath.Join(o.BinDir, "kube-controller-manager"),
		args, filepath.Join(c.Dir, "kube-controller-manager.log"))
	if err != nil {
		return err
	}
	return waitHTTP(ctx, c.controllers, tr, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz", "")
}
