#!/usr/bin/env bash
# Build kube-network-policies (NetworkPolicy enforcement for the local node)
# from its Go module, patched, and link it into BIN_DIR.
#
#   bash toolchain/knp.sh BIN_DIR            # build if needed, then link
#   bash toolchain/knp.sh BIN_DIR --check    # only verify (exit 1 if not built/linked)
#
# Source: sigs.k8s.io/kube-network-policies@$KNP_VERSION from the Go module
# cache (downloaded through GOPROXY; its h1 checksum is pinned in
# toolchain/knp/lock/sources.sum), copied, patched with
# toolchain/knp/$KNP_VERSION.patch (--kubeconfig flag, xtables NFQUEUE target
# instead of nft_queue, SIGTERM cleanup, --disable-nri wired; see the patch's
# header), and built in a wrapper module (`replace ... => ./src`) whose
# go.mod/go.sum are locked in toolchain/knp/lock/.
#
# Cached outside the repository, one entry per version and patch:
#   ${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}/
#       kube-network-policies-<version>-<hash of patch + lock + recipe>/kube-network-policies
# built in a temporary directory next to it and renamed into place when
# complete, so an interrupted build never looks finished.
#
# Progress goes to stderr; stdout stays empty. See toolchain/knp/README.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KNP_DIR="$SCRIPT_DIR/knp"
LOCK="$KNP_DIR/lock"
KNP_MOD=sigs.k8s.io/kube-network-policies
KNP_VERSION="${LANGFLOW_KNP_VERSION:-v0.8.0}"
PATCH="$KNP_DIR/$KNP_VERSION.patch"
BINARY=kube-network-policies
# Bump when the recipe below changes in a way that must rebuild.
RECIPE_EPOCH=1
JOBS="${GO_BUILD_JOBS:-2}"

log() { printf 'knp.sh: %s\n' "$*" >&2; }
die() { printf 'knp.sh: ERROR: %s\n' "$*" >&2; exit 1; }
usage() { die "usage: bash toolchain/knp.sh BIN_DIR [--check]"; }

[[ $# -ge 1 && $# -le 2 ]] || usage
case "$1" in -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;; esac
BIN_DIR="$1"
MODE="${2:-}"
[[ -z "$MODE" || "$MODE" == "--check" ]] || usage
[[ -n "$BIN_DIR" ]] || usage
[[ -f "$PATCH" ]] || die "no patch for $KNP_VERSION: $PATCH"

CACHE="${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}"

sha() { sha256sum | cut -d' ' -f1; }
# The cache entry's inputs: version, patch, lock files (go.mod, go.sum,
# recipe.mod, sources.sum), recipe epoch. A lock written by the first build
# changes the hash, so it is recomputed after building.
recipe_hash() {
  {
    echo "epoch=$RECIPE_EPOCH $KNP_MOD@$KNP_VERSION"
    sha256sum <"$PATCH"
    if [[ -d "$LOCK" ]]; then
      (cd "$LOCK" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    fi
  } | sha
}
entry_for() { printf '%s/%s-%s-%s' "$CACHE" "$BINARY" "$KNP_VERSION" "$(cut -c1-12 <<<"$1")"; }
entry_ok() {  # entry_ok <dir> <hash>
  [[ -f "$1/BUILDINFO" ]] && grep -qx "recipe: $2" "$1/BUILDINFO" && [[ -x "$1/$BINARY" ]]
}

HASH=$(recipe_hash)
ENTRY=$(entry_for "$HASH")

# ---------------------------------------------------------------- --check
if [[ "$MODE" == "--check" ]]; then
  if ! entry_ok "$ENTRY" "$HASH"; then
    die "kube-network-policies $KNP_VERSION is not built ($ENTRY); run: bash toolchain/knp.sh $BIN_DIR"
  fi
  if [[ ! -x "$BIN_DIR/$BINARY" || ! "$BIN_DIR/$BINARY" -ef "$ENTRY/$BINARY" ]]; then
    die "no link $BIN_DIR/$BINARY -> $ENTRY/$BINARY; run: bash toolchain/knp.sh $BIN_DIR"
  fi
  log "kube-network-policies $KNP_VERSION present in $BIN_DIR"
  exit 0
fi

# ---------------------------------------------------------------- build
WORKDIRS=()
on_exit() {
  local rc=$? d
  for d in "${WORKDIRS[@]+"${WORKDIRS[@]}"}"; do
    [[ -n "$d" && -d "$d" ]] && { chmod -R u+w "$d" 2>/dev/null || true; rm -rf "$d"; }
  done
  ((rc == 0)) || log "failed (exit $rc) building $KNP_MOD@$KNP_VERSION; see the output above"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

go_env() {
  command -v go >/dev/null || die "go is not installed (needed to build kube-network-policies)"
  command -v python3 >/dev/null || die "python3 is needed"
  command -v patch >/dev/null || die "patch is needed (apt-get install patch)"
  # As toolchain/build.sh: no toolchain download, static binary.
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
  export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}${GO_NOSUMDB:-}"
}

# Scratch dirs are named .knp-work-*, not .work-*: toolchain/build.sh removes
# $CACHE/.work-* whenever it starts, even while this script is building.
workdir() {  # workdir <var> <name>: scratch dir on the cache's filesystem
  local d
  d=$(mktemp -d "$CACHE/.knp-work-$2.XXXXXX")
  chmod 0755 "$d"
  WORKDIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

# moddownload and modkey, as build.sh has them.
# shellcheck source=go-modules.sh
. "$SCRIPT_DIR/go-modules.sh"


# Use the committed lock if it was made from the same recipe, else resolve the
# module graph once (go mod tidy, needs the module proxy) and write the lock.
ensure_lock() {
  local dir=$1
  if [[ -f "$LOCK/recipe.mod" && -f "$LOCK/go.mod" && -f "$LOCK/go.sum" ]] &&
     [[ "$(modkey "$LOCK/recipe.mod")" == "$(modkey "$dir/go.mod")" ]]; then
    cp "$LOCK/go.mod" "$LOCK/go.sum" "$dir/"
    return
  fi
  log "no lock for this recipe in toolchain/knp/lock; resolving the module graph (go mod tidy)"
  cp "$dir/go.mod" "$dir/recipe.mod.tmp"
  (cd "$dir" && go mod tidy)
  mkdir -p "$LOCK"
  cp "$dir/go.mod" "$dir/go.sum" "$LOCK/"
  mv "$dir/recipe.mod.tmp" "$LOCK/recipe.mod"
  log "wrote toolchain/knp/lock/ (commit it: it pins every module checksum)"
}

check_source_sum() {  # check_source_sum <module@version> <h1 sum>
  local file="$LOCK/sources.sum" want
  want=$(awk -v m="${1%@*}" -v v="${1#*@}" '$1==m && $2==v {print $3}' "$file" 2>/dev/null || true)
  if [[ -z "$want" ]]; then
    mkdir -p "$LOCK"
    echo "${1%@*} ${1#*@} $2" >>"$file"
    log "recorded checksum of $1 in toolchain/knp/lock/sources.sum"
  elif [[ "$want" != "$2" ]]; then
    die "checksum mismatch for $1: got $2, toolchain/knp/lock/sources.sum has $want"
  fi
}

build() {
  local w stage src sum out
  workdir w knp; workdir stage knp-stage
  log "building $KNP_MOD@$KNP_VERSION with toolchain/knp/$KNP_VERSION.patch"
  src=$(moddownload "$KNP_MOD@$KNP_VERSION" Dir)
  sum=$(moddownload "$KNP_MOD@$KNP_VERSION" Sum)
  check_source_sum "$KNP_MOD@$KNP_VERSION" "$sum"
  cp -R "$src" "$w/src"
  chmod -R u+w "$w/src"
  patch -p1 --batch --forward --quiet -d "$w/src" <"$PATCH" || die "toolchain/knp/$KNP_VERSION.patch does not apply to $KNP_MOD@$KNP_VERSION"
  cat >"$w/go.mod" <<EOF
module langflow.local/toolchain/kube-network-policies

go 1.24

require $KNP_MOD $KNP_VERSION

replace $KNP_MOD => ./src
EOF
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd"\n' "$KNP_MOD" >"$w/tools.go"
  ensure_lock "$w"
  (cd "$w" && go build -p "$JOBS" -trimpath -mod=readonly -ldflags "-s -w" -o "$stage/$BINARY" "$KNP_MOD/cmd")
  # The patched flag must be there.
  out=$("$stage/$BINARY" --help 2>&1 || true)
  grep -q -- '-kubeconfig' <<<"$out" || die "built $BINARY has no --kubeconfig flag (patch not effective?)"
  HASH=$(recipe_hash)
  ENTRY=$(entry_for "$HASH")
  {
    echo "recipe: $HASH"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version)"
    echo "$BINARY: $KNP_MOD@$KNP_VERSION ($sum) + toolchain/knp/$KNP_VERSION.patch (sha256 $(sha <"$PATCH"))"
  } >"$stage/BUILDINFO"
  if [[ -e "$ENTRY" ]]; then
    local old; workdir old knp-old
    mv -T "$ENTRY" "$old/entry"
  fi
  mv -T "$stage" "$ENTRY"
}

mkdir -p "$CACHE" || die "cannot create cache directory $CACHE"
# One knp build at a time per cache (its own lock file: build.sh holds .lock).
exec 9>"$CACHE/.lock-$BINARY"
if ! flock -n 9; then
  log "another knp.sh is building in $CACHE; waiting for it"
  flock 9
fi
# Scratch left by an interrupted run (we hold the lock, so nothing else owns it).
rm -rf "$CACHE"/.knp-work-*
HASH=$(recipe_hash)
ENTRY=$(entry_for "$HASH")
if entry_ok "$ENTRY" "$HASH"; then
  log "kube-network-policies $KNP_VERSION: cached in $ENTRY"
else
  go_env
  start=$SECONDS
  build
  log "built in $((SECONDS - start))s: $ENTRY"
fi

mkdir -p "$BIN_DIR"
if [[ ! "$BIN_DIR/$BINARY" -ef "$ENTRY/$BINARY" ]]; then
  ln -sfn "$ENTRY/$BINARY" "$BIN_DIR/$BINARY.tmp"
  mv -Tf "$BIN_DIR/$BINARY.tmp" "$BIN_DIR/$BINARY"
fi
log "linked $BIN_DIR/$BINARY -> $ENTRY/$BINARY"
