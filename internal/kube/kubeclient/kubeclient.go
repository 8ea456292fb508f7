// Package kubeclient finds the Kubernetes API server and builds the small clients Lucid's
// control plane uses to talk to it: a dynamic client (unstructured objects, no typed
// clientset, so no API group is registered at init). It sits beside the control-plane flow,
// used by source/kube (informers), the webhook and `lucid install --apply`; every command
// that talks to a cluster finds it with Config, so they all look in the same order:
//
//	kubeclient → source/kube → config → store → model → translate → ads
//
// Neither the full clientset (k8s.io/client-go/kubernetes) nor the discovery client (which
// imports k8s.io/client-go/kubernetes/scheme) is imported: both register every API group at
// init and cost memory in every lucid process, sidecars included. Whether a resource is
// served is found by listing it (see Served).
package kubeclient

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/homedir"
)

// Where is how the API server was found, for log lines.
type Where string

// Config returns the rest.Config for the API server, searched in Istio's order (istiod and
// istioctl's BuildClientCmd):
//
//  1. kubeconfig, when not empty (the --kubeconfig flag); the file must exist;
//  2. $KUBECONFIG (a list of files, merged as kubectl merges them);
//  3. in-cluster: the pod's service account token and $KUBERNETES_SERVICE_HOST;
//  4. ~/.kube/config.
//
// kubectl differs only in trying ~/.kube/config before the service account; inside a Pod,
// where the control plane runs, the service account is the cluster it means. The returned
// config carries Lucid's user agent. The error names which source failed.
func Config(kubeconfig string) (*rest.Config, Where, error) {
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		cfg, err := fromFiles(&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig})
		if err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return withAgent(cfg), Where("kubeconfig " + kubeconfig), nil
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		cfg, err := fromFiles(&clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)})
		if err != nil {
			return nil, "", fmt.Errorf("$KUBECONFIG %s: %w", env, err)
		}
		return withAgent(cfg), Where("$KUBECONFIG " + env), nil
	}
	cfg, inErr := rest.InClusterConfig()
	if inErr == nil {
		return withAgent(cfg), "in-cluster service account", nil
	}
	home := filepath.Join(homedir.HomeDir(), clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
	if _, err := os.Stat(home); err == nil {
		cfg, err := fromFiles(&clientcmd.ClientConfigLoadingRules{ExplicitPath: home})
		if err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s: %w", home, err)
		}
		return withAgent(cfg), Where("kubeconfig " + home), nil
	}
	if errors.Is(inErr, rest.ErrNotInCluster) {
		return nil, "", fmt.Errorf("no Kubernetes API server found: pass --kubeconfig, set $KUBECONFIG, create %s, or run in a pod", home)
	}
	return nil, "", fmt.Errorf("in-cluster config: %w (and no %s)", inErr, home)
}

func fromFiles(rules *clientcmd.ClientConfigLoadingRules) (*rest.Config, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, err //nolint:wrapcheck // the caller names the file
	}
	return cfg, nil
}

func withAgent(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "lucid"
	}
	return cfg
}

// Clients are the clients built from one rest.Config.
type Clients struct {
	Config  *rest.Config
	Dynamic dynamic.Interface
}

// New builds the dynamic client for cfg.
func New(cfg *rest.Config) (*Clients, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client for %s: %w", cfg.Host, err)
	}
	return &Clients{Config: cfg, Dynamic: dyn}, nil
}

// Load is Config followed by New.
func Load(kubeconfig string) (*Clients, Where, error) {
	cfg, where, err := Config(kubeconfig)
	if err != nil {
		return nil, "", err
	}
	c, err := New(cfg)
	if err != nil {
		return nil, "", err
	}
	return c, where, nil
}
