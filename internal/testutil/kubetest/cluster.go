// Package kubetest runs a real Kubernetes API server for tests: etcd and kube-apiserver
// (built by `make kube-bins` into a cache outside the repository, see scripts/kube-bins.sh)
// on loopback ports, with token authentication, RBAC and Node authorization,
// service-account token signing and the default admission plugins (including
// MutatingAdmissionWebhook). It sits under every Kubernetes-facing test: discovery's
// informers, the injection webhook and `lucid install --apply` talk to it exactly as they
// would to a cluster. There are no nodes, no controller manager and no scheduler: Pods
// stay Pending, and tests create what controllers would (EndpointSlices, the default
// ServiceAccount — see CreateNamespace).
//
// It imports client-go's rest/dynamic/clientcmd only, never k8s.io/kubernetes.
package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Defaults of Options.
const (
	// DefaultServiceCIDR is the Service ClusterIP range. It is loopback on purpose: nothing
	// in a test can send traffic to a ClusterIP off this machine.
	DefaultServiceCIDR  = "127.1.0.0/16"
	DefaultStartTimeout = 3 * time.Minute
	AdminUser           = "lucid-admin" // the token user, in group system:masters
)

// Options configure Start. The zero value is a working cluster.
type Options struct {
	BinDir       string        // etcd and kube-apiserver; default BinDir()
	ServiceCIDR  string        // --service-cluster-ip-range; default DefaultServiceCIDR
	StartTimeout time.Duration // until /readyz answers ok; default DefaultStartTimeout
	// APIServerArgs are appended to kube-apiserver's command line (a later flag wins).
	APIServerArgs []string
	// Controllers runs kube-controller-manager with these controllers (its --controllers
	// names, e.g. EndpointControllers); by default none runs.
	Controllers []string
}

// EndpointControllers are the controllers that make a cluster behave for service-mesh
// tests: EndpointSlices from Services and Pods (Pods made running with RunPod), namespace
// deletion, and each namespace's "default" ServiceAccount.
var EndpointControllers = []string{"endpointslice", "namespace", "serviceaccount"}

// Cluster is a running etcd + kube-apiserver.
type Cluster struct {
	// Config is the admin identity (a static token in group system:masters) with the
	// cluster's CA; copy it (rest.CopyConfig) before changing it.
	Config *rest.Config
	// Kubeconfig is a file with the same identity, for code that reads kubeconfigs.
	Kubeconfig string
	// CAPEM is the CA that signed the API server's serving certificate.
	CAPEM []byte
	// Dir holds the logs, certificates and etcd's data; Stop removes it (the logs stay
	// when the cluster is stopped with keepLogs, see StopKeepLogs).
	Dir string

	etcd, apiserver, controllers *proc
	stopOnce                     sync.Once
}

// Start runs etcd and kube-apiserver and returns when the API server is ready. The
// binaries must exist (RequireBinaries in tests).
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.BinDir == "" {
		o.BinDir = BinDir()
	}
	if o.ServiceCIDR == "" {
		o.ServiceCIDR = DefaultServiceCIDR
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if err := binariesPresent(o.BinDir); err != nil {
		return nil, err
	}
	if len(o.Controllers) > 0 {
		if _, err := os.Stat(filepath.Join(o.BinDir, "kube-controller-manager")); err != nil {
			return nil, fmt.Errorf("%w: kube-controller-manager not in %s; run `make kube-bins`", errNoBinaries, o.BinDir)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	var lastErr error
	for range 3 { // a picked port can be taken before the process binds it: retry
		c, retry, err := start(ctx, o)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, o Options) (c *Cluster, retry bool, err error) {
	dir, err := os.MkdirTemp("", "lucid-kubetest-")
	if err != nil {
		return nil, false, fmt.Errorf("kubetest: %w", err)
	}
	c = &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.stop(false)
		}
	}()
	p, err := writePKI(dir)
	if err != nil {
		return c, false, err
	}
	c.CAPEM = p.caPEM
	token, err := randomToken()
	if err != nil {
		return c, false, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	line := fmt.Sprintf("%s,%s,%s,\"system:masters\"\n", token, AdminUser, AdminUser)
	if err := os.WriteFile(tokens, []byte(line), 0o600); err != nil {
		return c, false, fmt.Errorf("kubetest: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return c, false, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	c.etcd, err = startProc("etcd", filepath.Join(o.BinDir, "etcd"), []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(dir, "etcd"),
		"--listen-client-urls=" + etcdURL,
		"--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		"--unsafe-no-fsync", // test data: speed over durability
		"--log-level=warn",
	}, filepath.Join(dir, "etcd.log"))
	if err != nil {
		return c, false, err
	}
	etcdTr := &http.Transport{}
	defer etcdTr.CloseIdleConnections()
	if err := waitHTTP(ctx, c.etcd, etcdTr, etcdURL+"/health", ""); err != nil {
		return c, c.etcd.portInUse(), err
	}

	host := "https://127.0.0.1:" + strconv.Itoa(ports[2])
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--tls-cert-file=" + p.servingCert,
		"--tls-private-key-file=" + p.serving,
		"--token-auth-file=" + tokens,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=" + o.ServiceCIDR,
		// No kubernetes Service endpoints: 127.0.0.1 is not a valid endpoint address and
		// nothing in a test reaches the API server through its Service.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
	}
	c.apiserver, err = startProc("kube-apiserver", filepath.Join(o.BinDir, "kube-apiserver"),
		append(args, o.APIServerArgs...), filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return c, false, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	if err := waitHTTP(ctx, c.apiserver, tr, host+"/readyz", token); err != nil {
		return c, c.apiserver.portInUse(), err
	}
	// The system namespaces are created by a controller after /readyz; tests use them.
	for _, ns := range []string{"default", "kube-system"} {
		if err := waitHTTP(ctx, c.apiserver, tr, host+"/api/v1/namespaces/"+ns, token); err != nil {
			return c, false, err
		}
	}

	c.Config = &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM},
		QPS:             500,
		Burst:           1000,
	}
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, host, p.caPEM, token); err != nil {
		return c, false, err
	}
	// The service-account controller is not running: give the system namespaces their
	// "default" ServiceAccount, without which no Pod can be created there.
	for _, ns := range []string{"default", "kube-system"} {
		if err := c.createDefaultServiceAccount(ctx, ns); err != nil {
			return c, false, err
		}
	}
	if len(o.Controllers) > 0 {
		if err := c.startControllers(ctx, o, p, ports[3], tr); err != nil {
			return c, c.controllers != nil && c.controllers.portInUse(), err
		}
	}
	return c, false, nil
}

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
func waitHTTP(ctx context.Context, p *proc, tr http.RoundTripper, url, token string) error {
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		if done, err := p.exited(); done {
			return p.exitError(err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s not ready at %s (last answer: %s): %w; log %s ends:\n%s",
				p.name, url, last, ctx.Err(), p.log, p.tail(30))
		case <-tick.C:
		}
	}
}

func writeKubeconfig(path, host string, ca []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: ca}
	cfg.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: AdminUser, Namespace: "default"}
	cfg.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kubetest: kubeconfig: %w", err)
	}
	return nil
}

// Stop ends kube-apiserver and etcd, waits for both to exit and removes Dir. It is safe to
// call more than once.
func (c *Cluster) Stop() { c.stop(false) }

// StopKeepLogs is Stop, but the log files stay (etcd's data is still removed) so a failing
// test can point at them.
func (c *Cluster) StopKeepLogs() { c.stop(true) }

func (c *Cluster) stop(keepLogs bool) {
	c.stopOnce.Do(func() {
		if c.controllers != nil {
			c.controllers.stop(10 * time.Second)
		}
		if c.apiserver != nil {
			c.apiserver.stop(20 * time.Second)
		}
		if c.etcd != nil {
			c.etcd.stop(10 * time.Second)
		}
		if keepLogs {
			_ = os.RemoveAll(filepath.Join(c.Dir, "etcd"))
			return
		}
		_ = os.RemoveAll(c.Dir)
	})
}

// Logs returns the last n lines of both processes' logs, for a failure message.
func (c *Cluster) Logs(n int) string {
	var s string
	for _, p := range []*proc{c.etcd, c.apiserver, c.controllers} {
		if p != nil {
			s += fmt.Sprintf("--- %s (%s), last %d lines:\n%s\n", p.name, p.log, n, p.tail(n))
		}
	}
	return s
}

// LogFiles are the paths of the processes' logs.
func (c *Cluster) LogFiles() []string {
	var out []string
	for _, p := range []*proc{c.etcd, c.apiserver, c.controllers} {
		if p != nil {
			out = append(out, p.log)
		}
	}
	return out
}

// pids of the running processes (for the no-leftovers test).
func (c *Cluster) pids() []int {
	var out []int
	for _, p := range []*proc{c.etcd, c.apiserver, c.controllers} {
		if p != nil && p.cmd.Process != nil {
			out = append(out, p.cmd.Process.Pid)
		}
	}
	return out
}

var errNoBinaries = errors.New("kubetest: Kubernetes test binaries missing")
