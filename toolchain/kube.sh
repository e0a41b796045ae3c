#!/usr/bin/env bash
# Build a local Kubernetes control plane and what a real local node needs for
# the integration tests from Go modules (no binary downloads) and link it into
# BIN_DIR.
#
#   bash toolchain/kube.sh BIN_DIR            # build if needed, then link
#   bash toolchain/kube.sh BIN_DIR --check    # only verify everything is there
#
# Provides in BIN_DIR: kube-apiserver, kube-controller-manager, kube-scheduler
# (all from one Kubernetes release), kwok, and etcd (Debian's etcd-server);
# for a real node beside it: kubelet and kube-proxy (the same release), pause
# (the sandbox image's binary, from the same release's build/pause), and
# containerd, ctr, runc (Debian's containerd and runc; the node's other Debian
# packages, containernetworking-plugins, iptables, conntrack and debootstrap,
# are installed when missing but not linked). CoreDNS is built by build.sh
# (it has a lock under toolchain/lock/).
#
# Builds are cached outside the repository, keyed by version:
#   ${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}/
#       kubernetes-<version>/        kube-apiserver kube-controller-manager kube-scheduler
#       kubernetes-node-<version>/   kubelet kube-proxy
#       kwok-<version>/              kwok
#       pause-<version>/             pause (static C program; PAUSE_VERSION in versions.env)
# A build happens in a temporary directory next to the target and is renamed
# into place only when complete, so an interrupted build never looks finished.
#
# Progress goes to stderr; stdout stays empty.
set -euo pipefail

# One Kubernetes release for all three control-plane binaries. 1.35+ needs a
# newer etcd than Debian's 3.4.23, so stay within 1.31-1.34.
KUBE_VERSION="${LANGFLOW_KUBE_VERSION:-v1.34.4}"
# kwok v0.7.0: go directive 1.24.0, built against k8s.io/client-go v0.33 (within
# the supported client/server skew of the 1.34 API server).
KWOK_VERSION="${LANGFLOW_KWOK_VERSION:-v0.7.0}"
ETCD_BIN=/usr/bin/etcd
KUBE_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)
# The node's binaries, same release, cached apart so the control plane's
# entry stays valid.
NODE_BINARIES=(kubelet kube-proxy)
# pause (the sandbox image's binary): version from versions.env (kubeadm's
# PauseVersion for this release); the source is build/pause of k8s.io/kubernetes@KUBE_VERSION.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PAUSE_VERSION="$(set +u; . "$SCRIPT_DIR/versions.env" && printf '%s' "${PAUSE_VERSION:-}")" || PAUSE_VERSION=""
# Debian packages of the real node: package -> a file it installs.
declare -A NODE_PACKAGES=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [debootstrap]=/usr/sbin/debootstrap
  [nftables]=/usr/sbin/nft
)
NODE_PACKAGE_ORDER=(containerd runc containernetworking-plugins iptables conntrack debootstrap nftables)

log() { printf 'kube.sh: %s\n' "$*" >&2; }
die() { printf 'kube.sh: ERROR: %s\n' "$*" >&2; exit 1; }

usage() { die "usage: bash toolchain/kube.sh BIN_DIR [--check]"; }

[[ $# -ge 1 && $# -le 2 ]] || usage
BIN_DIR="$1"
MODE="${2:-}"
[[ -z "$MODE" || "$MODE" == "--check" ]] || usage
[[ -n "$BIN_DIR" ]] || usage
[[ -n "$PAUSE_VERSION" ]] || die "no PAUSE_VERSION in $SCRIPT_DIR/versions.env"

CACHE_ROOT="${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}"
KUBE_DIR="$CACHE_ROOT/kubernetes-$KUBE_VERSION"
NODE_DIR="$CACHE_ROOT/kubernetes-node-$KUBE_VERSION"
KWOK_DIR="$CACHE_ROOT/kwok-$KWOK_VERSION"
PAUSE_DIR="$CACHE_ROOT/pause-$PAUSE_VERSION"

# name -> file the BIN_DIR link must point to
declare -A TARGETS=(
  [kube-apiserver]="$KUBE_DIR/kube-apiserver"
  [kube-controller-manager]="$KUBE_DIR/kube-controller-manager"
  [kube-scheduler]="$KUBE_DIR/kube-scheduler"
  [kwok]="$KWOK_DIR/kwok"
  [etcd]="$ETCD_BIN"
  [kubelet]="$NODE_DIR/kubelet"
  [kube-proxy]="$NODE_DIR/kube-proxy"
  [pause]="$PAUSE_DIR/pause"
  [containerd]=/usr/bin/containerd
  [ctr]=/usr/bin/ctr
  [runc]=/usr/sbin/runc
)
NAMES=(kube-apiserver kube-controller-manager kube-scheduler kwok etcd
       kubelet kube-proxy pause containerd ctr runc)

# ---------------------------------------------------------------- --check
if [[ "$MODE" == "--check" ]]; then
  missing=()
  for name in "${NAMES[@]}"; do
    target="${TARGETS[$name]}"
    link="$BIN_DIR/$name"
    if [[ ! -x "$target" ]]; then
      missing+=("$name (no executable $target)")
    elif [[ ! -x "$link" ]] || [[ "$(readlink -f "$link")" != "$(readlink -f "$target")" ]]; then
      missing+=("$name (no link $link -> $target)")
    fi
  done
  for pkg in "${NODE_PACKAGE_ORDER[@]}"; do
    [[ -x "${NODE_PACKAGES[$pkg]}" ]] || missing+=("Debian package $pkg (no ${NODE_PACKAGES[$pkg]})")
  done
  if ((${#missing[@]})); then
    for m in "${missing[@]}"; do log "missing: $m"; done
    die "local Kubernetes toolchain incomplete; run: bash toolchain/kube.sh $BIN_DIR"
  fi
  log "local Kubernetes toolchain present in $BIN_DIR ($KUBE_VERSION, kwok $KWOK_VERSION, pause $PAUSE_VERSION)"
  exit 0
fi

# ---------------------------------------------------------------- helpers
need_go() {
  command -v go >/dev/null 2>&1 || die "go is not on PATH (needed to build $1)"
  # Never let go fetch another toolchain: fail clearly instead.
  export GOTOOLCHAIN=local
}
mkdir -p "$CACHE_ROOT" || die "cannot create cache directory $CACHE_ROOT"

TMP_DIRS=()
cleanup() {
  local d
  for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
    [[ -n "$d" && -d "$d" ]] && { chmod -R u+w "$d" 2>/dev/null || true; rm -rf "$d"; }
  done
}
trap cleanup EXIT

# Serialise concurrent runs building the same thing (flock is optional).
with_lock() {
  local name="$1"; shift
  if command -v flock >/dev/null 2>&1; then
    (
      trap cleanup EXIT
      exec 9>"$CACHE_ROOT/.lock-$name"
      flock 9
      "$@"
    )
  else
    ( trap cleanup EXIT; "$@" )
  fi
}

# Module cache info for module@version (downloads it if needed); prints the
# value of JSON field $3 ("GoMod", "Dir", ...).
mod_field() {
  local json
  json="$(cd "$2" && GOFLAGS="${GOFLAGS:-}" go mod download -json "$1" 2>&1)" \
    || die "go mod download $1 failed: $json"
  if grep -q '"Error"' <<<"$json"; then
    die "go mod download $1 failed: $(grep '"Error"' <<<"$json")"
  fi
  sed -n "s/^[[:space:]]*\"$3\": \"\(.*\)\",\{0,1\}\$/\1/p" <<<"$json" | head -n1
}

all_present() {
  local dir="$1"; shift
  local b
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

# Rename a finished staging directory into place (atomic rename(2)).
publish() {
  local staged="$1" final="$2"
  if ! mv -T "$staged" "$final" 2>/dev/null; then
    # Someone else published first; accept theirs if complete.
    [[ -d "$final" ]] || die "could not move $staged to $final"
  fi
}

# ---------------------------------------------------------------- kubernetes
# kube_wrapper_module <dir> <k8s.io/kubernetes go.mod>: write <dir>/go.mod, the
# wrapper module the Kubernetes binaries are built in, and set KUBE_LDFLAGS.
# Every k8s.io/* requirement at v0.0.0 is a staging module that the main module
# resolves through a local replace; the wrapper points those at the published
# v0.<minor>.<patch> tags. KUBE_LDFLAGS stamps the version the way upstream's
# hack/lib/version.sh does (buildDate: the release's time from the proxy's .info).
kube_wrapper_module() {
  local dir="$1" gomod="$2"
  local ver="${KUBE_VERSION#v}" major minor patch
  IFS=. read -r major minor patch <<<"$ver"
  [[ -n "$major" && -n "$minor" && -n "$patch" ]] || die "bad Kubernetes version $KUBE_VERSION"
  local staging_ver="v0.$minor.$patch"

  local staging
  staging="$(awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// { print $1 }' "$gomod" | sort -u)"
  [[ -n "$staging" ]] || die "found no staging modules in $gomod"
  local godirective godebug
  godirective="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
  godebug="$(grep -E '^godebug ' "$gomod" || true)"

  {
    echo "module localcluster.invalid/kubebuild"
    echo
    echo "go ${godirective:-1.24.0}"
    [[ -n "$godebug" ]] && { echo; echo "$godebug"; }
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    local m
    for m in $staging; do echo "	$m v0.0.0 => $m $staging_ver"; done
    echo ")"
  } >"$dir/go.mod"

  KUBE_LDFLAGS="-s -w"
  local key val kv build_date
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${gomod%.mod}.info" 2>/dev/null || true)"
  [[ -n "$build_date" ]] || build_date="1970-01-01T00:00:00Z"
  for kv in "gitVersion=$KUBE_VERSION" "gitMajor=$major" "gitMinor=$minor" \
            "gitTreeState=clean" "buildDate=$build_date"; do
    key="${kv%%=*}"; val="${kv#*=}"
    KUBE_LDFLAGS+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
  done
}

# build_kube_binaries <entry dir> <label> <binaries...>: build cmd/<binary> of
# k8s.io/kubernetes@KUBE_VERSION into <entry dir> unless all are there.
build_kube_binaries() {
  local dir="$1" label="$2"; shift 2
  local binaries=("$@")
  if all_present "$dir" "${binaries[@]}"; then
    log "$label $KUBE_VERSION: cached in $dir"
    return 0
  fi
  [[ -e "$dir" ]] && { log "removing incomplete $dir"; rm -rf "$dir"; }
  need_go "Kubernetes $KUBE_VERSION ($label)"

  local work
  work="$(mktemp -d "$CACHE_ROOT/.tmp-$label-$KUBE_VERSION.XXXXXX")"
  TMP_DIRS+=("$work")
  mkdir -p "$work/mod" "$work/out"

  log "$label $KUBE_VERSION: fetching module metadata"
  local gomod
  gomod="$(mod_field "k8s.io/kubernetes@$KUBE_VERSION" "$work" GoMod)"
  [[ -f "$gomod" ]] || die "no go.mod found for k8s.io/kubernetes@$KUBE_VERSION"
  kube_wrapper_module "$work/mod" "$gomod"

  local pkgs=() b
  for b in "${binaries[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done

  log "$label $KUBE_VERSION: building ${binaries[*]} (cold build takes a long while on few cores)"
  local start=$SECONDS
  (
    cd "$work/mod"
    # -mod=mod lets go fill in go.sum for the wrapper module.
    CGO_ENABLED=0 go build -mod=mod -p 2 -trimpath -tags selinux,notest \
      -ldflags="$KUBE_LDFLAGS" -o "$work/out/" "${pkgs[@]}"
  ) >&2 || die "building Kubernetes $KUBE_VERSION ($label: ${binaries[*]}) failed (see go output above)"

  all_present "$work/out" "${binaries[@]}" || die "build of Kubernetes $KUBE_VERSION ($label) produced no binaries"
  local got
  for b in "${binaries[@]}"; do
    got="$("$work/out/$b" --version 2>&1 || true)"
    [[ "$got" == "Kubernetes $KUBE_VERSION" ]] || die "built $b reports '$got', expected 'Kubernetes $KUBE_VERSION'"
  done
  publish "$work/out" "$dir"
  log "$label $KUBE_VERSION: built in $((SECONDS - start))s -> $dir"
}

build_kubernetes() { build_kube_binaries "$KUBE_DIR" kubernetes "${KUBE_BINARIES[@]}"; }
build_kubernetes_node() { build_kube_binaries "$NODE_DIR" kubernetes-node "${NODE_BINARIES[@]}"; }

# ---------------------------------------------------------------- kwok
build_kwok() {
  if all_present "$KWOK_DIR" kwok; then
    log "kwok $KWOK_VERSION: cached in $KWOK_DIR"
    return 0
  fi
  [[ -e "$KWOK_DIR" ]] && { log "removing incomplete $KWOK_DIR"; rm -rf "$KWOK_DIR"; }
  need_go "kwok $KWOK_VERSION"

  local work
  work="$(mktemp -d "$CACHE_ROOT/.tmp-kwok-$KWOK_VERSION.XXXXXX")"
  TMP_DIRS+=("$work")
  mkdir -p "$work/mod" "$work/out"

  local gomod
  gomod="$(mod_field "sigs.k8s.io/kwok@$KWOK_VERSION" "$work" GoMod)"
  local godirective
  godirective="$(awk '$1 == "go" { print $2; exit }' "$gomod")"
  {
    echo "module localcluster.invalid/kwokbuild"
    echo
    echo "go ${godirective:-1.24.0}"
    echo
    echo "require sigs.k8s.io/kwok $KWOK_VERSION"
  } >"$work/mod/go.mod"

  local v="${KWOK_VERSION#v}"
  local ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v -X sigs.k8s.io/kwok/pkg/consts.PreRelease=GA"
  log "kwok $KWOK_VERSION: building"
  local start=$SECONDS
  (
    cd "$work/mod"
    CGO_ENABLED=0 go build -mod=mod -p 2 -trimpath -ldflags="$ldflags" \
      -o "$work/out/kwok" sigs.k8s.io/kwok/cmd/kwok
  ) >&2 || die "building kwok $KWOK_VERSION failed (see go output above)"
  [[ -x "$work/out/kwok" ]] || die "build of kwok $KWOK_VERSION produced no binary"
  publish "$work/out" "$KWOK_DIR"
  log "kwok $KWOK_VERSION: built in $((SECONDS - start))s -> $KWOK_DIR"
}

# ---------------------------------------------------------------- pause
# The sandbox ("pause") image's binary, compiled as build/pause/Makefile of the
# same Kubernetes release compiles it (CFLAGS -Os -Wall -Werror -static, then
# strip); the Makefile's -DVERSION=v$(TAG)-$(REV) takes REV from git, which a
# module zip has no history for, so VERSION is v$(TAG).
build_pause() {
  if all_present "$PAUSE_DIR" pause; then
    log "pause $PAUSE_VERSION: cached in $PAUSE_DIR"
    return 0
  fi
  [[ -e "$PAUSE_DIR" ]] && { log "removing incomplete $PAUSE_DIR"; rm -rf "$PAUSE_DIR"; }
  command -v gcc >/dev/null 2>&1 && command -v strip >/dev/null 2>&1 \
    || die "gcc and strip are needed to build pause $PAUSE_VERSION (Debian packages gcc, binutils, libc6-dev)"
  need_go "pause $PAUSE_VERSION (its source is in k8s.io/kubernetes@$KUBE_VERSION)"

  local work
  work="$(mktemp -d "$CACHE_ROOT/.tmp-pause-$PAUSE_VERSION.XXXXXX")"
  TMP_DIRS+=("$work")
  mkdir -p "$work/src" "$work/out"

  local src tag
  src="$(mod_field "k8s.io/kubernetes@$KUBE_VERSION" "$work" Dir)/build/pause"
  [[ -f "$src/linux/pause.c" && -f "$src/Makefile" ]] || die "no build/pause/linux/pause.c in k8s.io/kubernetes@$KUBE_VERSION"
  tag="$(sed -n 's/^TAG[[:space:]]*?=[[:space:]]*//p' "$src/Makefile" | head -n1)"
  [[ "$tag" == "$PAUSE_VERSION" ]] \
    || die "k8s.io/kubernetes@$KUBE_VERSION builds pause '$tag' (build/pause/Makefile TAG), but versions.env has PAUSE_VERSION=$PAUSE_VERSION"
  cp "$src/linux/pause.c" "$work/src/pause.c"

  log "pause $PAUSE_VERSION: compiling build/pause/linux/pause.c of k8s.io/kubernetes@$KUBE_VERSION"
  (
    cd "$work/src"
    gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION" -o pause pause.c
    strip pause
  ) >&2 || die "compiling pause $PAUSE_VERSION failed (see gcc output above; static linking needs libc6-dev)"

  local kind got
  if command -v file >/dev/null 2>&1; then
    kind="$(file -b "$work/src/pause")"
    [[ "$kind" == *"statically linked"* || "$kind" == *"static-pie linked"* ]] \
      || die "built pause is not static: $kind"
  elif ldd "$work/src/pause" >/dev/null 2>&1; then
    die "built pause is not static: $(ldd "$work/src/pause" 2>&1 | head -n1)"
  else
    kind="static (ldd: not a dynamic executable)"
  fi
  got="$("$work/src/pause" -v 2>&1 || true)"
  [[ "$got" == "pause.c v$PAUSE_VERSION" ]] || die "built pause reports '$got', expected 'pause.c v$PAUSE_VERSION'"
  install -m 0755 "$work/src/pause" "$work/out/pause"
  publish "$work/out" "$PAUSE_DIR"
  log "pause $PAUSE_VERSION: built -> $PAUSE_DIR ($kind)"
}

# ---------------------------------------------------------------- Debian packages
# apt_ensure <package> <file>: install the Debian package unless <file> (one it
# installs) is already there. A failure ends with one line naming the package.
APT_UPDATED=""
apt_ensure() {
  local pkg="$1" file="$2"
  [[ -x "$file" ]] && return 0
  command -v apt-get >/dev/null 2>&1 || die "$file is missing and apt-get is unavailable; install the Debian package $pkg"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "$file is missing; run as root or install it: apt-get install $pkg"
    sudo=(sudo -n)
  fi
  log "installing Debian package $pkg (no $file)"
  if [[ -z "$APT_UPDATED" ]]; then
    "${sudo[@]}" apt-get update >&2 || die "apt-get update failed (needed to install the Debian package $pkg)"
    APT_UPDATED=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" >&2 \
    || die "apt-get install $pkg failed (Debian package $pkg provides $file)"
  [[ -x "$file" ]] || die "Debian package $pkg installed but $file is missing"
}

# etcd for the control plane: Debian's etcd-server.
ensure_etcd() {
  apt_ensure etcd-server "$ETCD_BIN"
  log "etcd: $("$ETCD_BIN" --version 2>/dev/null | sed -n 1p || true)"
}

# The real node's container runtime, CNI plugins and tools.
ensure_node_packages() {
  local pkg
  for pkg in "${NODE_PACKAGE_ORDER[@]}"; do apt_ensure "$pkg" "${NODE_PACKAGES[$pkg]}"; done
}

# ---------------------------------------------------------------- main
ensure_etcd
ensure_node_packages
with_lock "kubernetes-$KUBE_VERSION" build_kubernetes
with_lock "kubernetes-node-$KUBE_VERSION" build_kubernetes_node
with_lock "kwok-$KWOK_VERSION" build_kwok
with_lock "pause-$PAUSE_VERSION" build_pause

mkdir -p "$BIN_DIR" || die "cannot create $BIN_DIR"
for name in "${NAMES[@]}"; do
  ln -sfn "${TARGETS[$name]}" "$BIN_DIR/$name" || die "cannot link $BIN_DIR/$name"
done
log "linked ${NAMES[*]} into $BIN_DIR"
