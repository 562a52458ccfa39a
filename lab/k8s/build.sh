#!/usr/bin/env bash
# Build the Kubernetes control plane the tests run on: kube-apiserver,
# kube-controller-manager and kubectl from the k8s.io/kubernetes Go module,
# etcd from go.etcd.io/etcd/server/v3. Each set of binaries is cached under
# $K8S_CACHE/<version>, so only the first run pays for the build.
# The published k8s.io/kubernetes go.mod requires its staging modules at
# v0.0.0 (its replace lines point into its own tree and do not apply to a
# dependency): one replace line per staging module pins them to the release.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.35.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
K8S_CACHE=${K8S_CACHE:-/var/cache/polardb-stack/k8s}
GOPROXY=${GOPROXY:-https://proxy.golang.org}
export GOPROXY GOFLAGS=-mod=mod CGO_ENABLED=0
# Debian machines with Go from go.dev have it here, not always on root's PATH
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

bin_dir="$K8S_CACHE/$K8S_VERSION-etcd-$ETCD_VERSION/bin"
# one build at a time: make test builds beside the lab's tests, which may ask for the binaries meanwhile
mkdir -p "$K8S_CACHE"
exec 9>"$K8S_CACHE/.build.lock"
flock 9
wanted=(kube-apiserver kube-controller-manager kubectl etcd)
missing=0
for b in "${wanted[@]}"; do [[ -x $bin_dir/$b ]] || missing=1; done
if ((missing == 0)); then
  echo "cached: $bin_dir"
  exit 0
fi

work="$K8S_CACHE/src-$K8S_VERSION-etcd-$ETCD_VERSION"
rm -rf "$work" && mkdir -p "$work/k8s" "$work/etcd" "$bin_dir.tmp"
started=$(date +%s)
say() { printf '[k8s build +%ss] %s\n' "$(($(date +%s) - started))" "$*"; }

say "kubernetes $K8S_VERSION: module file"
curl -fsS "${GOPROXY%%,*}/k8s.io/kubernetes/@v/$K8S_VERSION.mod" -o "$work/k8s/upstream.mod"
staging_version="v0.${K8S_VERSION#v1.}"
{
  echo "module polardb.stack/lab/k8s"
  echo
  sed -n 's/^go \(.*\)$/go \1/p' "$work/k8s/upstream.mod"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's/^[[:space:]]*\(k8s\.io\/[a-z0-9-]*\) v0\.0\.0$/\t\1 => \1 '"$staging_version"'/p' "$work/k8s/upstream.mod"
  echo ")"
} >"$work/k8s/go.mod"
cat >"$work/k8s/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
say "kubernetes: go mod tidy (downloads the modules)"
(cd "$work/k8s" && go mod tidy)
say "kubernetes: go build"
(cd "$work/k8s" && go build -trimpath -ldflags="-s -w" -o "$bin_dir.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)

say "etcd $ETCD_VERSION"
cat >"$work/etcd/go.mod" <<GOMOD
module polardb.stack/lab/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
cat >"$work/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
(cd "$work/etcd" && go mod tidy && go build -trimpath -ldflags="-s -w" -o "$bin_dir.tmp/etcd" go.etcd.io/etcd/server/v3)

rm -rf "$bin_dir" && mv "$bin_dir.tmp" "$bin_dir" && rm -rf "$work"
say "built: $bin_dir"
