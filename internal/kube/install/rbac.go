package install

import rbacv1 "k8s.io/api/rbac/v1"

// DiscoveryClusterRules are the cluster-wide permissions of the control plane's
// ServiceAccount (the ClusterRole `lucid install` renders). `lucid discovery --kubernetes`
// needs, and test/kube runs it with exactly these:
//
//   - list, watch: services, pods, namespaces, discovery.k8s.io endpointslices, and every
//     networking.istio.io / security.istio.io kind (get too);
//   - create (and patch): core events, for the LucidValidation Warning Events on invalid
//     Istio objects;
//   - create: authentication.k8s.io tokenreviews, the mesh CA's check of workload tokens;
//   - get, list, watch, create, update: configmaps, the mesh roots (istio-ca-root-cert)
//     published in every namespace;
//   - get, list, watch: secrets, the Secrets Gateways' tls.credentialName reference (each
//     watched by name; no other Secret is read).
func DiscoveryClusterRules() []rbacv1.PolicyRule { return clusterRules() }
