#!/usr/bin/env bash
# Builds the real components the integration tests talk to, from the Go module proxy, into a cache
# outside the checkout so fresh clones and CI runs on the same machine reuse them.
# Usage: test/harness/build-binaries.sh [kopia|etcd|kube-apiserver|kustomize|versitygw|all]
set -euo pipefail

CACHE="${PVC_GUARDIAN_CACHE:-$HOME/.cache/pvc-guardian}"
BIN="$CACHE/bin"
WORK="$CACHE/build"
mkdir -p "$BIN" "$WORK"

# Versions: kopia as VolSync's Kopia mover ships it (plus an older one for a version matrix), a
# current Kubernetes minor (volume populators are GA), and the etcd minor that Kubernetes tests with.
KOPIA_VERSIONS="${KOPIA_VERSIONS:-v0.22.3 v0.21.1}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.5}"  # the etcd that Kubernetes v1.35 itself requires
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"  # renders manifests/ as `kubectl apply -k` would (v5.8.3 needs Go 1.27)
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"  # an Apache-2.0 S3 server over a local folder, for S3 repositories

export CGO_ENABLED=0
export GOFLAGS="-trimpath"

log() { echo "[build-binaries] $*" >&2; }

build_kopia() {
  for version in $KOPIA_VERSIONS; do
    local out="$BIN/kopia-$version"
    if [[ -x "$out" ]]; then log "kopia $version cached"; continue; fi
    log "building kopia $version (a few minutes on first run)"
    # Not `go install kopia@version`: it asks the proxy for the module's version list, which the
    # proxy refuses for kopia; requiring an exact version in our own module does not.
    build_in_module "$WORK/kopia-$version" github.com/kopia/kopia "$version" github.com/kopia/kopia "$out"
  done
}

# A throwaway module: `go install pkg@version` refuses modules with replace directives, so we
# require the module and build its main package from inside our own go.mod.
build_in_module() {
  local dir="$1" module="$2" version="$3" pkg="$4" out="$5"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    go mod init pvc-guardian-harness/build >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > tools.go
    go mod edit -require="$module@$version"
    if [[ -n "${REPLACES:-}" ]]; then
      for r in $REPLACES; do go mod edit -replace="$r"; done
    fi
    go mod tidy -e >/dev/null 2>&1 || true
    # Build beside the target and rename, so an interrupted build never leaves a cached binary.
    go build -o "$out.partial" "$pkg"
    mv "$out.partial" "$out"
  )
}

build_etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  if [[ -x "$out" ]]; then log "etcd $ETCD_VERSION cached"; return; fi
  log "building etcd $ETCD_VERSION"
  build_in_module "$WORK/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3 "$out"
}

build_kube_apiserver() {
  local out="$BIN/kube-apiserver-$KUBERNETES_VERSION"
  if [[ -x "$out" ]]; then log "kube-apiserver $KUBERNETES_VERSION cached"; return; fi
  log "building kube-apiserver $KUBERNETES_VERSION (10-20 minutes on first run)"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
  # directories; each published staging module v0.X.Y is the twin of Kubernetes v1.X.Y.
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local dir="$WORK/kube-apiserver"
  rm -rf "$dir" && mkdir -p "$dir"
  # The go.mod through go itself (not curl), so GOPROXY and GONOSUMDB settings apply.
  local gomod_file
  gomod_file=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [[ -f "$gomod_file" ]] || { log "could not download k8s.io/kubernetes@$KUBERNETES_VERSION"; exit 1; }
  local replaces=""
  for m in $(grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging' "$gomod_file" | awk '{print $1}'); do
    replaces+=" $m=$m@$staging_version"
  done
  # What `kube-apiserver --version` and GET /version report; the Kubernetes release build sets the
  # same variables (hack/lib/version.sh).
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  (
    cd "$dir"
    go mod init pvc-guardian-harness/kube >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
    for r in $replaces; do go mod edit -replace="$r"; done
    go mod tidy >/dev/null
    # Build beside the target and rename, so an interrupted build never leaves a cached binary.
    go build -ldflags "$ldflags" -o "$out.partial" k8s.io/kubernetes/cmd/kube-apiserver
    mv "$out.partial" "$out"
  )
}

build_kustomize() {
  local out="$BIN/kustomize-$KUSTOMIZE_VERSION"
  if [[ -x "$out" ]]; then log "kustomize $KUSTOMIZE_VERSION cached"; return; fi
  log "building kustomize $KUSTOMIZE_VERSION"
  build_in_module "$WORK/kustomize" sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" sigs.k8s.io/kustomize/kustomize/v5 "$out"
}

build_versitygw() {
  local out="$BIN/versitygw-$VERSITYGW_VERSION"
  if [[ -x "$out" ]]; then log "versitygw $VERSITYGW_VERSION cached"; return; fi
  log "building versitygw $VERSITYGW_VERSION"
  build_in_module "$WORK/versitygw" github.com/versity/versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw/cmd/versitygw "$out"
}

what="${1:-all}"
case "$what" in
  kopia) build_kopia ;;
  etcd) build_etcd ;;
  kube-apiserver) build_kube_apiserver ;;
  kustomize) build_kustomize ;;
  versitygw) build_versitygw ;;
  all) build_kopia; build_etcd; build_kube_apiserver; build_kustomize; build_versitygw ;;
  *) echo "usage: $0 [kopia|etcd|kube-apiserver|kustomize|versitygw|all]" >&2; exit 2 ;;
esac
log "done: $(ls "$BIN" | tr '\n' ' ')"
