package up

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/lucid-mesh/lucid/internal/controlplane/ca"
	"github.com/lucid-mesh/lucid/internal/controlplane/config"
	"github.com/lucid-mesh/lucid/internal/controlplane/discovery"
)

// Workload identity in local mode: discovery runs the mesh CA on CAAddr with its state
// beside the config directory, and each sidecar gets its own token (a fresh one at every
// `lucid up`, recorded by digest in the state directory's tokens file) on fd 3. Every
// process `lucid up` starts runs as the same user, so this keeps honest workloads apart
// (a token is in no argv, environment or file another workload reads), not a hostile one.

// caAddr is the mesh CA's address in local mode: discovery's ADS host, istiod's port 15012.
func caAddr(p *Plan) string {
	host, _, err := net.SplitHostPort(p.GRPCAddr)
	if err != nil {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(ca.DefaultPort))
}

// tokenFD is the descriptor a sidecar reads its token from (cmd.ExtraFiles[0]).
const tokenFD = 3

// enableIdentity turns on the CA in the plan's discovery and hands every sidecar its
// token (gateways too: they send ISTIO_MUTUAL to sidecars):
// identity spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount or default>.
func enableIdentity(p *Plan, objs []*config.Object, dir string) error {
	state := discovery.StateDirFor(dir)
	if err := os.MkdirAll(state, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	tokens := filepath.Join(state, discovery.TokensFileName)
	addr := caAddr(p)
	td, err := trustDomain(dir)
	if err != nil {
		return err
	}
	p.Discovery.Args = append(p.Discovery.Args, "--ca-addr", addr, "--state-dir", state)
	p.Discovery.Binds = append(p.Discovery.Binds, addr)
	sas := map[string]string{}
	for _, o := range objs {
		if we, ok := o.Spec.(*networkingv1alpha3.WorkloadEntry); ok && o.Kind == config.KindWorkloadEntry {
			sas[o.Namespace+"/"+o.Name] = we.GetServiceAccount()
		}
	}
	procs := make([]*Process, 0, len(p.Sidecars)+len(p.Gateways))
	for i := range p.Sidecars {
		procs = append(procs, &p.Sidecars[i])
	}
	for i := range p.Gateways {
		procs = append(procs, &p.Gateways[i])
	}
	for _, sc := range procs {
		w := processWorkload(p, sc)
		if w == nil {
			continue
		}
		sa := sas[w.Namespace+"/"+w.Name]
		if sa == "" {
			sa = "default"
		}
		tok, err := ca.IssueLocalToken(tokens, w.Namespace+"/"+w.Name, w.Namespace, sa)
		if err != nil {
			return fmt.Errorf("workload token for %s/%s: %w", w.Namespace, w.Name, err)
		}
		sc.Secret = []byte(tok)
		sc.Args = append(sc.Args, "--ca-address", addr, "--ca-root-cert", filepath.Join(state, discovery.RootCertFile),
			"--ca-token-fd", fmt.Sprint(tokenFD), "--service-account", sa)
		if td != ca.DefaultTrustDomain {
			sc.Args = append(sc.Args, "--trust-domain", td) // the CA issues in the mesh's trust domain
		}
	}
	return nil
}

// trustDomain is the directory's meshconfig.yaml trustDomain (default cluster.local): the
// CA issues identities in it, so the proxies must ask for and expect them there.
func trustDomain(dir string) (string, error) {
	path := filepath.Join(dir, config.MeshConfigFile)
	if !fileExists(path) {
		return ca.DefaultTrustDomain, nil
	}
	mc, err := config.LoadMeshConfig(path)
	if err != nil {
		return "", err
	}
	if td := mc.GetTrustDomain(); td != "" {
		return td, nil
	}
	return ca.DefaultTrustDomain, nil
}

// processWorkload is the workload a sidecar or gateway process runs for (its --workload
// and --namespace).
func processWorkload(p *Plan, pr *Process) *Workload {
	args := pr.Args
	var name, ns string
	for j := 0; j+1 < len(args); j++ {
		switch args[j] {
		case "--workload":
			name = args[j+1]
		case "--namespace":
			ns = args[j+1]
		}
	}
	for k := range p.Workloads {
		if w := &p.Workloads[k]; w.Name == name && w.Namespace == ns {
			return w
		}
	}
	return nil
}

// secretPipe hands secret to cmd as fd 3 through a pipe; the returned close releases the
// parent's ends once the child started (or failed to).
func secretPipe(cmd *exec.Cmd, secret []byte) (func(), error) {
	if len(secret) == 0 {
		return func() {}, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// A token is far below the pipe's buffer: the write never blocks.
	if _, err := w.Write(secret); err != nil {
		_ = r.Close()
		_ = w.Close()
		return nil, err
	}
	_ = w.Close()
	cmd.ExtraFiles = []*os.File{r}
	return func() { _ = r.Close() }, nil
}
