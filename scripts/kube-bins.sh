#!/usr/bin/env bash
# Builds the Kubernetes binaries Lucid's Kubernetes tests run against: kube-apiserver and
# kube-controller-manager (internal/testutil/kubetest), kube-scheduler and kubelet (the real node
# of internal/testutil/kubenode) from k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, at the
# versions pinned by the separate module test/kubebin, static (CGO_ENABLED=0), into a cache
# outside the repository:
#
#   ${LUCID_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/kube/<kubernetes version>}
#
# A stamp file there records the versions built; when it matches, nothing is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/../test/kubebin"

modver() { go list -m -f '{{.Version}}' "$1"; }
kube_version=$(modver k8s.io/kubernetes)
etcd_version=$(modver go.etcd.io/etcd/server/v3)
dir=${LUCID_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/lucid/kube/$kube_version}
stamp="kube-apiserver kube-controller-manager kube-scheduler kubelet k8s.io/kubernetes $kube_version; etcd go.etcd.io/etcd/server/v3 $etcd_version"
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet etcd)

uptodate=true
for b in "${bins[@]}"; do [[ -x $dir/$b ]] || uptodate=false; done
if [[ $uptodate == true && -f $dir/.stamp && "$(cat "$dir/.stamp")" == "$stamp" ]]; then
	echo "kube-bins: up to date in $dir ($stamp)"
	exit 0
fi

echo "kube-bins: building $stamp into $dir (takes several minutes on a small machine)"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The version the API server reports (/version), as the Kubernetes release build sets it.
minor=${kube_version#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for kv in "gitVersion=$kube_version" "gitMajor=1" "gitMinor=$minor" "gitTreeState=clean"; do
	ldflags+=" -X k8s.io/component-base/version.$kv"
done

start=$SECONDS
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet go.etcd.io/etcd/server/v3
mv "$tmp/server" "$tmp/etcd"
# Replace each binary by a rename: a test running the old one keeps running.
for b in "${bins[@]}"; do mv "$tmp/$b" "$dir/$b"; done
echo "$stamp" >"$dir/.stamp"
echo "kube-bins: built in $((SECONDS - start))s into $dir: ${bins[*]}"
