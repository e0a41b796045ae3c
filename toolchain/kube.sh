#!/usr/bin/env bash
# Build a local Kubernetes control plane for the integration tests from Go
# modules (no binary downloads) and link it into BIN_DIR.
#
#   bash toolchain/kube.sh BIN_DIR            # build if needed, then link
#   bash toolchain/kube.sh BIN_DIR --check    # only verify everything is there
#
# Provides in BIN_DIR: kube-apiserver, kube-controller-manager, kube-scheduler
# (all from one Kubernetes release), kwok, and etcd (Debian's etcd-server).
#
# Builds are cached outside the repository, keyed by version:
#   ${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}/
#       kubernetes-<version>/   kube-apiserver kube-controller-manager kube-scheduler
#       kwok-<version>/         kwok
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

log() { printf 'kube.sh: %s\n' "$*" >&2; }
die() { printf 'kube.sh: ERROR: %s\n' "$*" >&2; exit 1; }

usage() { die "usage: bash toolchain/kube.sh BIN_DIR [--check]"; }

[[ $# -ge 1 && $# -le 2 ]] || usage
BIN_DIR="$1"
MODE="${2:-}"
[[ -z "$MODE" || "$MODE" == "--check" ]] || usage
[[ -n "$BIN_DIR" ]] || usage

CACHE_ROOT="${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}"
KUBE_DIR="$CACHE_ROOT/kubernetes-$KUBE_VERSION"
KWOK_DIR="$CACHE_ROOT/kwok-$KWOK_VERSION"

# name -> file the BIN_DIR link must point to
declare -A TARGETS=(
  [kube-apiserver]="$KUBE_DIR/kube-apiserver"
  [kube-controller-manager]="$KUBE_DIR/kube-controller-manager"
  [kube-scheduler]="$KUBE_DIR/kube-scheduler"
  [kwok]="$KWOK_DIR/kwok"
  [etcd]="$ETCD_BIN"
)
NAMES=(kube-apiserver kube-controller-manager kube-scheduler kwok etcd)

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
  if ((${#missing[@]})); then
    for m in "${missing[@]}"; do log "missing: $m"; done
    die "local Kubernetes toolchain incomplete; run: bash toolchain/kube.sh $BIN_DIR"
  fi
  log "local Kubernetes toolchain present in $BIN_DIR ($KUBE_VERSION, kwok $KWOK_VERSION)"
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
build_kubernetes() {
  if all_present "$KUBE_DIR" "${KUBE_BINARIES[@]}"; then
    log "kubernetes $KUBE_VERSION: cached in $KUBE_DIR"
    return 0
  fi
  [[ -e "$KUBE_DIR" ]] && { log "removing incomplete $KUBE_DIR"; rm -rf "$KUBE_DIR"; }
  need_go "Kubernetes $KUBE_VERSION"

  local work
  work="$(mktemp -d "$CACHE_ROOT/.tmp-kubernetes-$KUBE_VERSION.XXXXXX")"
  TMP_DIRS+=("$work")
  mkdir -p "$work/mod" "$work/out"

  local ver="${KUBE_VERSION#v}" major minor patch
  IFS=. read -r major minor patch <<<"$ver"
  [[ -n "$major" && -n "$minor" && -n "$patch" ]] || die "bad Kubernetes version $KUBE_VERSION"
  local staging_ver="v0.$minor.$patch"

  log "kubernetes $KUBE_VERSION: fetching module metadata"
  local gomod
  gomod="$(mod_field "k8s.io/kubernetes@$KUBE_VERSION" "$work" GoMod)"
  [[ -f "$gomod" ]] || die "no go.mod found for k8s.io/kubernetes@$KUBE_VERSION"

  # Every k8s.io/* requirement at v0.0.0 is a staging module that the main
  # module resolves through a local replace; point those at the published tags.
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
  } >"$work/mod/go.mod"

  local ldflags="-s -w" key val
  local build_date
  build_date="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "${gomod%.mod}.info" 2>/dev/null || true)"
  [[ -n "$build_date" ]] || build_date="1970-01-01T00:00:00Z"
  for kv in "gitVersion=$KUBE_VERSION" "gitMajor=$major" "gitMinor=$minor" \
            "gitTreeState=clean" "buildDate=$build_date"; do
    key="${kv%%=*}"; val="${kv#*=}"
    ldflags+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
  done

  local pkgs=() b
  for b in "${KUBE_BINARIES[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done

  log "kubernetes $KUBE_VERSION: building ${KUBE_BINARIES[*]} (cold build takes a long while on few cores)"
  local start=$SECONDS
  (
    cd "$work/mod"
    # -mod=mod lets go fill in go.sum for the wrapper module.
    CGO_ENABLED=0 go build -mod=mod -p 2 -trimpath -tags selinux,notest \
      -ldflags="$ldflags" -o "$work/out/" "${pkgs[@]}"
  ) >&2 || die "building Kubernetes $KUBE_VERSION failed (see go output above)"

  all_present "$work/out" "${KUBE_BINARIES[@]}" || die "build of Kubernetes $KUBE_VERSION produced no binaries"
  local got
  got="$("$work/out/kube-apiserver" --version 2>&1 || true)"
  [[ "$got" == "Kubernetes $KUBE_VERSION" ]] || die "built kube-apiserver reports '$got', expected 'Kubernetes $KUBE_VERSION'"
  publish "$work/out" "$KUBE_DIR"
  log "kubernetes $KUBE_VERSION: built in $((SECONDS - start))s -> $KUBE_DIR"
}

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

# ---------------------------------------------------------------- etcd
ensure_etcd() {
  if [[ -x "$ETCD_BIN" ]]; then
    log "etcd: $("$ETCD_BIN" --version 2>/dev/null | sed -n 1p || true)"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || die "$ETCD_BIN is missing and apt-get is unavailable; install etcd (Debian package etcd-server)"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "$ETCD_BIN is missing; run as root or install etcd-server: apt-get install etcd-server"
    sudo=(sudo -n)
  fi
  log "etcd: installing Debian package etcd-server"
  "${sudo[@]}" apt-get update >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends etcd-server >&2 \
    || die "apt-get install etcd-server failed"
  [[ -x "$ETCD_BIN" ]] || die "etcd-server installed but $ETCD_BIN is missing"
}

# ---------------------------------------------------------------- main
ensure_etcd
with_lock "kubernetes-$KUBE_VERSION" build_kubernetes
with_lock "kwok-$KWOK_VERSION" build_kwok

mkdir -p "$BIN_DIR" || die "cannot create $BIN_DIR"
for name in "${NAMES[@]}"; do
  ln -sfn "${TARGETS[$name]}" "$BIN_DIR/$name" || die "cannot link $BIN_DIR/$name"
done
log "linked ${NAMES[*]} into $BIN_DIR"
