package kubenode

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The files below are what was measured to work on Debian 12 (containerd 1.6, runc 1.1,
// CNI plugins 1.1, cgroup v1, root without CAP_SYS_RESOURCE); docs/kubernetes-node.md says why
// each non-default line is there.

// containerdConfig: everything under dir, the pause image imported by the harness (never
// pulled), CNI from Debian's plugin directory.
func containerdConfig(k string) string {
	dir := filepath.Join(k, "containerd")
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  enable_selinux = false
  disable_apparmor = true
  # Without it every sandbox fails ("can't get final child's PID from pipe: EOF"): the
  # CRI asks runc for oom_score_adj -998, which needs CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
    max_conf_num = 1
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "containerd.sock"),
		PauseImage, cniBinDir, filepath.Join(k, "cni", "net.d"))
}

// cniConfig: a bridge the harness creates (the node's address is its gateway address),
// no masquerade and one route: a pod can address the pod subnet and 240.240.0.0/16, the
// addresses the DNS proxy allocates (a captured pod's connection to one never leaves the
// pod: the capture rules redirect it to the sidecar; anything else is dropped by the
// FORWARD rule).
func cniConfig(ipamDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "lucid-kubenode",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "240.240.0.0/16"}],
        "dataDir": %q
      }
    }
  ]
}
`, Bridge, PodSubnet, NodeIP, ipamDir)
}

// kubeletConfig is the KubeletConfiguration. failCgroupV1: false because kubelet 1.35+
// refuses cgroup v1 otherwise; cgroupDriver is the kubelet's because containerd 1.6 does
// not implement the RuntimeConfig call. clusterDNS is the node's address, where no server
// answers: pods get Kubernetes' resolv.conf (search domains, ndots:5), which the sidecar's
// DNS proxy serves once the capture rules send port 53 to it.
func kubeletConfig(k string, p *nodePKI) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: true
cgroupRoot: /
enforceNodeAllocatable: []
failSwapOn: false
containerRuntimeEndpoint: unix://%[1]s/containerd/containerd.sock
imageServiceEndpoint: unix://%[1]s/containerd/containerd.sock
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[3]s
tlsPrivateKeyFile: %[4]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[5]s}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [%[2]s]
resolvConf: ""
podLogsDir: %[1]s/podlogs
staticPodPath: ""
rotateCertificates: false
serverTLSBootstrap: false
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
syncFrequency: 10s
nodeStatusUpdateFrequency: 10s
maxPods: 40
protectKernelDefaults: false
`, k, NodeIP, p.kubeletCert, p.kubeletKey, p.caCert)
}

// writeClientKubeconfig writes a kubeconfig for server with a client certificate.
func writeClientKubeconfig(path, server string, ca []byte, cert, key string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["node"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificate: cert, ClientKey: key}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", AuthInfo: "node"}
	cfg.CurrentContext = "node"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("kubenode: kubeconfig: %w", err)
	}
	return nil
}

func writeFiles(files map[string]string) error {
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
		if err := os.WriteFile(path, []byte(strings.TrimLeft(content, "\n")), 0o600); err != nil {
			return fmt.Errorf("kubenode: %w", err)
		}
	}
	return nil
}
