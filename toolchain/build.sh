#!/usr/bin/env bash
# Build the Pulumi toolchain for this project from Go modules (no binary
# downloads) and print the bin dir that holds it.
#
#   bash toolchain/build.sh           # build what is missing, link, print bin dir
#   bash toolchain/build.sh --check   # only verify everything is built (exit 1 if not)
#
# Versions come from the pins in requirements.txt (pulumi, pulumi-kubernetes,
# pulumi-random), mapped to Go module versions by toolchain/versions.env.
# Builds are cached outside the repo, one directory per tool and pin:
#   ${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}/
#     pulumi-<pin>/                       pulumi
#     pulumi-language-python-<pin>/       pulumi-language-python, pulumi-language-python-exec
#     pulumi-resource-kubernetes-<pin>/   pulumi-resource-kubernetes
#     pulumi-resource-random-<pin>/       pulumi-resource-random (+ pulumi-tfgen-random, schema.json)
#     dex-<version>/, oauth2-proxy-<version>/   the sign-in test's real programs (versions.env)
#     actionlint-<version>/               the GitHub Actions workflow linter (versions.env)
#     helm-<version>/                     Helm, for the side-by-side benchmark (versions.env)
#     coredns-<version>/                  CoreDNS for the real local node, trimmed to its Corefile's plugins (versions.env)
#     bin-<hash of all of the above>/     links to the ten programs (+ what toolchain/kube.sh adds)
# Each entry is built in a temporary directory and renamed into place only when
# complete, so an interrupted build never leaves a half-made entry.
#
# Progress goes to stderr; the last (and only) line on stdout is the bin dir.
# See toolchain/README.md.
set -euo pipefail

# All progress to stderr; fd 3 keeps the real stdout for the final line.
exec 3>&1 1>&2

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
REQUIREMENTS="$REPO_ROOT/requirements.txt"
CACHE="${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}"
LOCK_ROOT="$SCRIPT_DIR/lock"
WRAPPERS="$SCRIPT_DIR/wrappers"
# Bump when the build recipe in this script changes in a way that must rebuild.
RECIPE_EPOCH=2

log() { printf '[toolchain] %s\n' "$*" >&2; }
die() { printf '[toolchain] ERROR: %s\n' "$*" >&2; exit 1; }

MODE=build
case "${1:-}" in
  "") ;;
  --check) MODE=check ;;
  -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown argument '$1' (usage: bash toolchain/build.sh [--check])" ;;
esac

# What is being built right now, for the failure message.
CURRENT=""
WORKDIRS=()
on_exit() {
  local rc=$?
  local d
  for d in "${WORKDIRS[@]}"; do [[ -n "$d" ]] && rm -rf "$d"; done
  if [[ $rc -ne 0 && -n "$CURRENT" ]]; then
    printf '[toolchain] ERROR: failed to build %s (exit %s); see the output above.\n' "$CURRENT" "$rc" >&2
  fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ pins
[[ -f "$REQUIREMENTS" ]] || die "$REQUIREMENTS not found (it pins pulumi, pulumi-kubernetes, pulumi-random)"

# pin <package>: the version pinned as '<package>==<version>' (PEP 503 names:
# case, '-', '_' and '.' are equivalent).
pin() {
  local want v
  want=$(tr 'A-Z_.' 'a-z--' <<<"$1")
  v=$(awk -v want="$want" '
    match($0, /^[[:space:]]*[A-Za-z0-9_.-]+[[:space:]]*==[[:space:]]*[^[:space:];\\#]+/) {
      split(substr($0, RSTART, RLENGTH), a, "==")
      name = tolower(a[1]); ver = a[2]
      gsub(/[[:space:]]/, "", name); gsub(/[[:space:]]/, "", ver); gsub(/[_.]/, "-", name)
      if (name == want) { print ver; exit }
    }' "$REQUIREMENTS")
  [[ -n "$v" ]] || die "no '$1==<version>' pin in $REQUIREMENTS"
  echo "$v"
}
PULUMI_PIN=$(pin pulumi)
KUBERNETES_PIN=$(pin pulumi-kubernetes)
RANDOM_PIN=$(pin pulumi-random)

# ------------------------------------------------------------------ version map
# shellcheck source=versions.env
source "$SCRIPT_DIR/versions.env"

# mapped <TOOL> <pin> <FIELD>: value from versions.env or a clear error.
mapped() {
  local var="${1}_${2//./_}_${3}"
  [[ -n "${!var:-}" ]] || die "no Go module mapping for $4==$2: add $var (and its siblings) to toolchain/versions.env (see toolchain/README.md)"
  printf '%s' "${!var}"
}
CLI_VERSION=$(mapped PULUMI "$PULUMI_PIN" CLI pulumi)
LANGHOST_VERSION=$(mapped PULUMI "$PULUMI_PIN" LANGHOST pulumi)
LANGHOST_PULUMI=$(mapped PULUMI "$PULUMI_PIN" LANGHOST_PULUMI pulumi)
EXEC_SDK=$(mapped PULUMI "$PULUMI_PIN" EXEC_SDK pulumi)
K8S_PROVIDER_VERSION=$(mapped KUBERNETES "$KUBERNETES_PIN" PROVIDER pulumi-kubernetes)
TF_RANDOM_VERSION=$(mapped RANDOM "$RANDOM_PIN" TF_RANDOM pulumi-random)
BRIDGE_VERSION=$(mapped RANDOM "$RANDOM_PIN" BRIDGE pulumi-random)
JOBS="${GO_BUILD_JOBS:-2}"

PKG_MOD=github.com/pulumi/pulumi/pkg/v3
SDK_MOD=github.com/pulumi/pulumi/sdk/v3
LANGHOST_MOD=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
K8S_MOD=github.com/pulumi/pulumi-kubernetes/provider/v4
BRIDGE_MOD=github.com/pulumi/pulumi-terraform-bridge/v3
TF_RANDOM_MOD=github.com/terraform-providers/terraform-provider-random
VERSION_PKG=github.com/pulumi/pulumi/sdk/v3/go/common/version
DEX_MOD=github.com/dexidp/dex
OAUTH2_PROXY_MOD=github.com/oauth2-proxy/oauth2-proxy/v7
ACTIONLINT_MOD=github.com/rhysd/actionlint
HELM_MOD=helm.sh/helm/v3
COREDNS_MOD=github.com/coredns/coredns
# The only CoreDNS plugins the real node's Corefile uses (order does not
# matter: core/dnsserver's directive list orders them).
COREDNS_PLUGINS=(errors health ready kubernetes forward cache loop reload loadbalance log)
[[ -n "${COREDNS_VERSION:-}" ]] || die "no COREDNS_VERSION in toolchain/versions.env"

log "pins: pulumi==$PULUMI_PIN pulumi-kubernetes==$KUBERNETES_PIN pulumi-random==$RANDOM_PIN"

# ------------------------------------------------------------------ helpers
sha() { sha256sum | cut -d' ' -f1; }

# Hash of every file under the given paths (missing paths hash as absent).
tree_hash() {
  local p
  for p in "$@"; do
    if [[ -d "$p" ]]; then
      (cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    elif [[ -f "$p" ]]; then
      sha256sum <"$p"
    else
      echo "absent $p"
    fi
  done | sha
}

# recipe_hash <tool> <lines...>: identifies one cache entry's inputs. A cache
# entry whose BUILDINFO records another hash is rebuilt.
recipe_hash() {
  local tool=$1; shift
  { echo "epoch=$RECIPE_EPOCH tool=$tool"; printf '%s\n' "$@"; tree_hash "$LOCK_ROOT/$tool"; } | sha
}

entry_ok() {  # entry_ok <dir> <hash> <files...>
  local dir=$1 hash=$2 f; shift 2
  [[ -f "$dir/BUILDINFO" ]] && grep -qx "recipe: $hash" "$dir/BUILDINFO" || return 1
  for f in "$@"; do [[ -x "$dir/$f" ]] || return 1; done
}

# ------------------------------------------------------------------ Go environment
go_env() {
  command -v go >/dev/null || die "go is not installed (needed to build the toolchain)"
  command -v python3 >/dev/null || die "python3 is needed to prepare provider schemas"
  # Static binaries (as upstream releases are): no C toolchain needed to build,
  # and the cache can be copied to other Linux machines.
  export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
  export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}${GO_NOSUMDB:-}"
  mkdir -p "$CACHE"
}

# workdir <var> <name>: a scratch directory on the cache's filesystem (so the
# final mv is atomic), removed on exit. Sets <var> (no subshell, so the
# cleanup list survives).
workdir() {
  local d
  d=$(mktemp -d "$CACHE/.work-$2.XXXXXX")
  chmod 0755 "$d"
  WORKDIRS+=("$d")
  printf -v "$1" '%s' "$d"
}

# moddownload and modkey.
# shellcheck source=go-modules.sh
. "$SCRIPT_DIR/go-modules.sh"

# copy_replaces <module@version> <dir>: copy the non-local replace directives of
# a dependency's go.mod (they only take effect in the main module) into <dir>/go.mod.
copy_replaces() {
  local gomod line
  gomod=$(moddownload "$1" GoMod)
  go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    old, new = r["Old"], r["New"]
    if not new.get("Version"):
        continue  # local path: not usable outside that repository
    o = old["Path"] + ("@" + old["Version"] if old.get("Version") else "")
    print(o + "=" + new["Path"] + "@" + new["Version"])' | while read -r line; do
    (cd "$2" && go mod edit -replace="$line")
  done
}

# tools_go <dir> <import paths...>: keep main packages of dependencies in the
# module graph (go mod tidy) without compiling them into anything.
tools_go() {
  local dir=$1 p; shift
  { echo "//go:build tools"; echo; echo "package tools"; echo; echo "import ("
    for p in "$@"; do echo "	_ \"$p\""; done; echo ")"; } >"$dir/tools.go"
}

# ensure_lock <tool> <dir> [<file>...]: <dir>/go.mod is the generated recipe,
# together with the given generated sources in <dir> (a wrapper main whose
# imports decide the module graph). Use the committed lock
# (toolchain/lock/<tool>/: tidied go.mod + go.sum, and copies of those sources)
# if it was made from the same recipe; otherwise resolve the graph once (go mod
# tidy, needs the module proxy) and write the lock for committing.
ensure_lock() {
  local tool=$1 dir=$2 lock="$LOCK_ROOT/$1" f same=1; shift 2
  for f in "$@"; do cmp -s "$lock/$f" "$dir/$f" || same=""; done
  if [[ -n "$same" && -f "$lock/recipe.mod" && -f "$lock/go.mod" && -f "$lock/go.sum" ]] &&
     [[ "$(modkey "$lock/recipe.mod")" == "$(modkey "$dir/go.mod")" ]]; then
    cp "$lock/go.mod" "$lock/go.sum" "$dir/"
    return
  fi
  log "$tool: no lock for this recipe in toolchain/lock/$tool; resolving the module graph (go mod tidy)"
  cp "$dir/go.mod" "$dir/recipe.mod.tmp"
  (cd "$dir" && go mod tidy)
  mkdir -p "$lock"
  cp "$dir/go.mod" "$dir/go.sum" "$lock/"
  for f in "$@"; do cp "$dir/$f" "$lock/$f"; done
  mv "$dir/recipe.mod.tmp" "$lock/recipe.mod"
  log "$tool: wrote toolchain/lock/$tool/ (commit it: it pins every module checksum)"
}

# check_source_sum <tool> <module@version> <h1 sum>: modules used as source
# trees outside the build list are pinned in toolchain/lock/<tool>/sources.sum.
check_source_sum() {
  local tool=$1 mv=$2 sum=$3 file="$LOCK_ROOT/$1/sources.sum" want
  want=$(awk -v m="${mv%@*}" -v v="${mv#*@}" '$1==m && $2==v {print $3}' "$file" 2>/dev/null || true)
  if [[ -z "$want" ]]; then
    mkdir -p "$LOCK_ROOT/$tool"
    echo "${mv%@*} ${mv#*@} $sum" >>"$file"
    log "$tool: recorded checksum of $mv in toolchain/lock/$tool/sources.sum"
  elif [[ "$want" != "$sum" ]]; then
    die "checksum mismatch for $mv: got $sum, toolchain/lock/$tool/sources.sum has $want"
  fi
}

gobuild() {  # gobuild <dir> <out> <ldflags> <package>
  (cd "$1" && go build -p "$JOBS" -trimpath -mod=readonly -ldflags "-s -w $3" -o "$2" "$4")
}

# install_entry <stage dir> <entry dir> <hash> <description>: atomically put a
# finished build into place.
install_entry() {
  local stage=$1 entry=$2 old
  { echo "recipe: $3"; echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version)"; printf '%s\n' "$4"; } >"$stage/BUILDINFO"
  if [[ -e "$entry" ]]; then
    old=$(mktemp -d "$CACHE/.old.XXXXXX"); WORKDIRS+=("$old")
    mv -T "$entry" "$old/entry"
  fi
  mv -T "$stage" "$entry"
}

# ------------------------------------------------------------------ the tools
PULUMI_ENTRY="$CACHE/pulumi-$PULUMI_PIN"
LANGHOST_ENTRY="$CACHE/pulumi-language-python-$PULUMI_PIN"
K8S_ENTRY="$CACHE/pulumi-resource-kubernetes-$KUBERNETES_PIN"
RANDOM_ENTRY="$CACHE/pulumi-resource-random-$RANDOM_PIN"
DEX_ENTRY="$CACHE/dex-$DEX_LABEL"
OAUTH2_PROXY_ENTRY="$CACHE/oauth2-proxy-$OAUTH2_PROXY_VERSION"
ACTIONLINT_ENTRY="$CACHE/actionlint-$ACTIONLINT_VERSION"
HELM_ENTRY="$CACHE/helm-$HELM_VERSION"
COREDNS_ENTRY="$CACHE/coredns-$COREDNS_VERSION"

# Recipe hashes (inputs of each entry, including its lock). Recomputed after a
# build because building may write the lock.
hash_pulumi() { PULUMI_HASH=$(recipe_hash "pulumi-$PULUMI_PIN" "$PKG_MOD@$CLI_VERSION"); }
hash_langhost() {
  LANGHOST_HASH=$(recipe_hash "pulumi-language-python-$PULUMI_PIN" "$LANGHOST_MOD@$LANGHOST_VERSION" \
    "pulumi=$LANGHOST_PULUMI" "exec=$SDK_MOD@$EXEC_SDK")
}
hash_kubernetes() {
  K8S_HASH=$(recipe_hash "pulumi-resource-kubernetes-$KUBERNETES_PIN" "$K8S_MOD@$K8S_PROVIDER_VERSION" "label=$KUBERNETES_PIN")
}
hash_random() {
  RANDOM_HASH=$(recipe_hash "pulumi-resource-random-$RANDOM_PIN" "$TF_RANDOM_MOD@$TF_RANDOM_VERSION" \
    "$BRIDGE_MOD@$BRIDGE_VERSION" "label=$RANDOM_PIN" "src=$(tree_hash "$WRAPPERS/pulumi-resource-random")")
}
hash_dex() { DEX_HASH=$(recipe_hash "dex-$DEX_LABEL" "$DEX_MOD@$DEX_VERSION" "$DEX_MOD/api/v2@$DEX_API_VERSION"); }
hash_oauth2_proxy() { OAUTH2_PROXY_HASH=$(recipe_hash "oauth2-proxy-$OAUTH2_PROXY_VERSION" "$OAUTH2_PROXY_MOD@$OAUTH2_PROXY_VERSION"); }
hash_actionlint() { ACTIONLINT_HASH=$(recipe_hash "actionlint-$ACTIONLINT_VERSION" "$ACTIONLINT_MOD@$ACTIONLINT_VERSION"); }
hash_helm() { HELM_HASH=$(recipe_hash "helm-$HELM_VERSION" "$HELM_MOD@$HELM_VERSION"); }
hash_coredns() { COREDNS_HASH=$(recipe_hash "coredns-$COREDNS_VERSION" "$COREDNS_MOD@$COREDNS_VERSION" "plugins=${COREDNS_PLUGINS[*]}"); }
hash_pulumi; hash_langhost; hash_kubernetes; hash_random; hash_dex; hash_oauth2_proxy; hash_actionlint; hash_helm; hash_coredns

build_pulumi() {
  local w stage v; workdir w pulumi; workdir stage pulumi-stage
  CURRENT="pulumi $PULUMI_PIN ($PKG_MOD/cmd/pulumi@$CLI_VERSION)"
  log "building $CURRENT"
  cat >"$w/go.mod" <<EOF
module langflow.local/toolchain/pulumi

go 1.24

require (
	$PKG_MOD $CLI_VERSION
	$SDK_MOD $CLI_VERSION
)
EOF
  copy_replaces "$PKG_MOD@$CLI_VERSION" "$w"
  tools_go "$w" "$PKG_MOD/cmd/pulumi"
  ensure_lock "pulumi-$PULUMI_PIN" "$w"
  gobuild "$w" "$stage/pulumi" "-X $VERSION_PKG.Version=$CLI_VERSION" "$PKG_MOD/cmd/pulumi"
  v=$(PULUMI_SKIP_UPDATE_CHECK=1 "$stage/pulumi" version)
  [[ "$v" == "v$PULUMI_PIN" ]] || die "built pulumi reports '$v', expected v$PULUMI_PIN"
  hash_pulumi
  install_entry "$stage" "$PULUMI_ENTRY" "$PULUMI_HASH" "pulumi: $PKG_MOD/cmd/pulumi@$CLI_VERSION"
  CURRENT=""
}

build_langhost() {
  local w stage dir sum; workdir w langhost; workdir stage langhost-stage
  CURRENT="pulumi-language-python for pulumi $PULUMI_PIN ($LANGHOST_MOD@$LANGHOST_VERSION)"
  log "building $CURRENT"
  cat >"$w/go.mod" <<EOF
module langflow.local/toolchain/pulumi-language-python

go 1.24

require (
	$LANGHOST_MOD $LANGHOST_VERSION
	$PKG_MOD $LANGHOST_PULUMI
	$SDK_MOD $LANGHOST_PULUMI
)
EOF
  copy_replaces "$LANGHOST_MOD@$LANGHOST_VERSION" "$w"
  tools_go "$w" "$LANGHOST_MOD"
  ensure_lock "pulumi-language-python-$PULUMI_PIN" "$w"
  gobuild "$w" "$stage/pulumi-language-python" "-X $VERSION_PKG.Version=$LANGHOST_PULUMI" "$LANGHOST_MOD"
  # The exec script the host runs ships in the sdk module at python/cmd/.
  dir=$(moddownload "$SDK_MOD@$EXEC_SDK" Dir)
  sum=$(moddownload "$SDK_MOD@$EXEC_SDK" Sum)
  check_source_sum "pulumi-language-python-$PULUMI_PIN" "$SDK_MOD@$EXEC_SDK" "$sum"
  install -m 0755 "$dir/python/cmd/pulumi-language-python-exec" "$stage/pulumi-language-python-exec"
  hash_langhost
  install_entry "$stage" "$LANGHOST_ENTRY" "$LANGHOST_HASH" \
    "pulumi-language-python: $LANGHOST_MOD@$LANGHOST_VERSION (pkg/sdk $LANGHOST_PULUMI)
pulumi-language-python-exec: $SDK_MOD@$EXEC_SDK python/cmd/pulumi-language-python-exec"
  CURRENT=""
}

build_kubernetes() {
  local w stage src sum; workdir w kubernetes; workdir stage kubernetes-stage
  CURRENT="pulumi-resource-kubernetes $KUBERNETES_PIN ($K8S_MOD@$K8S_PROVIDER_VERSION)"
  log "building $CURRENT"
  src=$(moddownload "$K8S_MOD@$K8S_PROVIDER_VERSION" Dir)
  sum=$(moddownload "$K8S_MOD@$K8S_PROVIDER_VERSION" Sum)
  check_source_sum "pulumi-resource-kubernetes-$KUBERNETES_PIN" "$K8S_MOD@$K8S_PROVIDER_VERSION" "$sum"
  # The provider embeds schema-embed.json / terraform-mapping-embed.json, which
  # upstream generates from the committed schema.json / terraform-mapping.json
  # (go generate); they are not in the module zip. Produce them in a copy.
  cp -R "$src" "$w/src"
  chmod -R u+w "$w/src"
  python3 - "$w/src/cmd/pulumi-resource-kubernetes" "$KUBERNETES_PIN" <<'EOF'
import json, os, sys
d, version = sys.argv[1], sys.argv[2]
with open(os.path.join(d, "schema.json")) as f:
    schema = json.load(f)
schema["version"] = version
with open(os.path.join(d, "schema-embed.json"), "w") as f:
    json.dump(schema, f, separators=(",", ":"))
with open(os.path.join(d, "terraform-mapping.json")) as f:
    mapping = json.load(f)
with open(os.path.join(d, "terraform-mapping-embed.json"), "w") as f:
    json.dump(mapping, f, separators=(",", ":"))
EOF
  cat >"$w/go.mod" <<EOF
module langflow.local/toolchain/pulumi-resource-kubernetes

go 1.24

require $K8S_MOD $K8S_PROVIDER_VERSION

replace $K8S_MOD => ./src
EOF
  copy_replaces "$K8S_MOD@$K8S_PROVIDER_VERSION" "$w"
  tools_go "$w" "$K8S_MOD/cmd/pulumi-resource-kubernetes"
  ensure_lock "pulumi-resource-kubernetes-$KUBERNETES_PIN" "$w"
  gobuild "$w" "$stage/pulumi-resource-kubernetes" \
    "-X $K8S_MOD/pkg/version.Version=$KUBERNETES_PIN" "$K8S_MOD/cmd/pulumi-resource-kubernetes"
  hash_kubernetes
  install_entry "$stage" "$K8S_ENTRY" "$K8S_HASH" \
    "pulumi-resource-kubernetes: $K8S_MOD@$K8S_PROVIDER_VERSION, labelled $KUBERNETES_PIN"
  CURRENT=""
}

build_random() {
  local w stage v; workdir w random; workdir stage random-stage
  CURRENT="pulumi-resource-random $RANDOM_PIN ($TF_RANDOM_MOD@$TF_RANDOM_VERSION via $BRIDGE_MOD@$BRIDGE_VERSION)"
  log "building $CURRENT"
  cp -R "$WRAPPERS/pulumi-resource-random/." "$w/"
  # The one-file shim module lives at .../terraform-provider-random/shim so it
  # may import the provider's internal package.
  cat >"$w/shim/go.mod" <<EOF
module $TF_RANDOM_MOD/shim

go 1.24

require $TF_RANDOM_MOD $TF_RANDOM_VERSION
EOF
  cat >"$w/go.mod" <<EOF
module langflow.local/toolchain/pulumi-resource-random

go 1.24

require (
	$BRIDGE_MOD $BRIDGE_VERSION
	$TF_RANDOM_MOD $TF_RANDOM_VERSION
	$TF_RANDOM_MOD/shim v0.0.0
)

replace $TF_RANDOM_MOD/shim => ./shim
EOF
  copy_replaces "$BRIDGE_MOD@$BRIDGE_VERSION" "$w"
  # Placeholders until pulumi-tfgen-random has produced the real files.
  echo '{}' >"$w/cmd/pulumi-resource-random/schema.json"
  echo '{}' >"$w/cmd/pulumi-resource-random/bridge-metadata.json"
  ensure_lock "pulumi-resource-random-$RANDOM_PIN" "$w"
  gobuild "$w" "$stage/pulumi-tfgen-random" "-X main.Version=$RANDOM_PIN" ./cmd/pulumi-tfgen-random
  log "generating the random provider schema (pulumi-tfgen-random schema)"
  (cd "$w" && "$stage/pulumi-tfgen-random" schema --skip-examples --out "$w/gen" >/dev/null)
  python3 - "$w/gen/schema.json" "$w/cmd/pulumi-resource-random/schema.json" "$RANDOM_PIN" <<'EOF'
import json, sys
src, dst, version = sys.argv[1:4]
with open(src) as f:
    schema = json.load(f)
schema["version"] = version
with open(dst, "w") as f:
    json.dump(schema, f, separators=(",", ":"))
EOF
  cp "$w/gen/bridge-metadata.json" "$w/cmd/pulumi-resource-random/bridge-metadata.json"
  cp "$w/cmd/pulumi-resource-random/schema.json" "$stage/schema.json"
  gobuild "$w" "$stage/pulumi-resource-random" "-X main.Version=$RANDOM_PIN" ./cmd/pulumi-resource-random
  v=$("$stage/pulumi-resource-random" -version)
  [[ "$v" == "$RANDOM_PIN" ]] || die "built pulumi-resource-random reports '$v', expected $RANDOM_PIN"
  hash_random
  install_entry "$stage" "$RANDOM_ENTRY" "$RANDOM_HASH" \
    "pulumi-resource-random: toolchain/wrappers/pulumi-resource-random over $TF_RANDOM_MOD@$TF_RANDOM_VERSION, $BRIDGE_MOD@$BRIDGE_VERSION, labelled $RANDOM_PIN"
  CURRENT=""
}

# build_program <tool> <binary> <module@version...> -- <main package> <ldflags> [<main.go writer>]: a
# program built from a wrapper module that requires the given modules (the sign-in test's Dex and
# oauth2-proxy, actionlint, Helm, CoreDNS), into the stage directory PROGRAM_STAGE. With a writer
# (a function called with the wrapper's directory that writes its main.go), the wrapper module
# itself is the main package (<main package> only names it in messages) and main.go is part of the lock.
build_program() {
  local tool=$1 binary=$2 w m; shift 2
  local requires=()
  while [[ $1 != -- ]]; do requires+=("$1"); shift; done
  local package=$2 ldflags=$3 writer=${4:-}
  workdir w "$tool"; workdir PROGRAM_STAGE "$tool-stage"
  CURRENT="$tool ($package)"
  log "building $CURRENT"
  { echo "module langflow.local/toolchain/$tool"; echo; echo "go 1.24"; echo; echo "require ("
    for m in "${requires[@]}"; do echo "	${m%@*} ${m#*@}"; done; echo ")"; } >"$w/go.mod"
  copy_replaces "${requires[0]}" "$w"
  if [[ -n "$writer" ]]; then
    "$writer" "$w"
    ensure_lock "$tool" "$w" main.go
    gobuild "$w" "$PROGRAM_STAGE/$binary" "$ldflags" .
  else
    tools_go "$w" "$package"
    ensure_lock "$tool" "$w"
    gobuild "$w" "$PROGRAM_STAGE/$binary" "$ldflags" "$package"
  fi
}

build_dex() {
  build_program "dex-$DEX_LABEL" dex "$DEX_MOD@$DEX_VERSION" "$DEX_MOD/api/v2@$DEX_API_VERSION" \
    -- "$DEX_MOD/cmd/dex" "-X main.version=$DEX_LABEL"
  hash_dex
  install_entry "$PROGRAM_STAGE" "$DEX_ENTRY" "$DEX_HASH" "dex: $DEX_MOD/cmd/dex@$DEX_VERSION ($DEX_LABEL)"
  CURRENT=""
}

build_oauth2_proxy() {
  build_program "oauth2-proxy-$OAUTH2_PROXY_VERSION" oauth2-proxy \
    "$OAUTH2_PROXY_MOD@$OAUTH2_PROXY_VERSION" -- "$OAUTH2_PROXY_MOD" \
    "-X $OAUTH2_PROXY_MOD/pkg/version.VERSION=$OAUTH2_PROXY_VERSION"
  hash_oauth2_proxy
  install_entry "$PROGRAM_STAGE" "$OAUTH2_PROXY_ENTRY" "$OAUTH2_PROXY_HASH" "oauth2-proxy: $OAUTH2_PROXY_MOD@$OAUTH2_PROXY_VERSION"
  CURRENT=""
}

build_actionlint() {
  local v
  # Built as a dependency, actionlint's own build info names our wrapper module: set its version.
  build_program "actionlint-$ACTIONLINT_VERSION" actionlint \
    "$ACTIONLINT_MOD@$ACTIONLINT_VERSION" -- "$ACTIONLINT_MOD/cmd/actionlint" \
    "-X $ACTIONLINT_MOD.version=$ACTIONLINT_VERSION"
  v=$("$PROGRAM_STAGE/actionlint" -version | sed -n 1p)
  [[ "$v" == "$ACTIONLINT_VERSION" ]] || die "built actionlint reports '$v', expected $ACTIONLINT_VERSION"
  hash_actionlint
  install_entry "$PROGRAM_STAGE" "$ACTIONLINT_ENTRY" "$ACTIONLINT_HASH" "actionlint: $ACTIONLINT_MOD/cmd/actionlint@$ACTIONLINT_VERSION"
  CURRENT=""
}

build_helm() {
  local v kube major minor
  # As upstream's Makefile does: besides the version, stamp the Kubernetes version of the
  # k8s.io/client-go Helm's go.mod requires (v0.N.x -> 1.N) as the default
  # .Capabilities.KubeVersion of `helm template` and the lint deprecation rules (else v1.20).
  kube=$(go mod edit -json "$(moddownload "$HELM_MOD@$HELM_VERSION" GoMod)" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Require") or []:
    if r["Path"] == "k8s.io/client-go":
        print(r["Version"])')
  [[ "$kube" =~ ^v0\.([0-9]+)\. ]] || die "cannot read the k8s.io/client-go version from $HELM_MOD@$HELM_VERSION's go.mod (got '$kube')"
  major=1 minor=${BASH_REMATCH[1]}
  build_program "helm-$HELM_VERSION" helm "$HELM_MOD@$HELM_VERSION" -- "$HELM_MOD/cmd/helm" \
    "-X $HELM_MOD/internal/version.version=$HELM_VERSION -X $HELM_MOD/pkg/lint/rules.k8sVersionMajor=$major -X $HELM_MOD/pkg/lint/rules.k8sVersionMinor=$minor -X $HELM_MOD/pkg/chartutil.k8sVersionMajor=$major -X $HELM_MOD/pkg/chartutil.k8sVersionMinor=$minor"
  v=$("$PROGRAM_STAGE/helm" version --short)
  [[ "$v" == "$HELM_VERSION" ]] || die "built helm reports '$v', expected $HELM_VERSION"
  hash_helm
  install_entry "$PROGRAM_STAGE" "$HELM_ENTRY" "$HELM_HASH" \
    "helm: $HELM_MOD/cmd/helm@$HELM_VERSION (default Kubernetes version v$major.$minor.0)"
  CURRENT=""
}

# CoreDNS for the real local node: upstream's main (coredns.go) with only the plugins its
# Corefile uses instead of core/plugin's all-plugins import list (zplugin.go).
coredns_main() {
  local p
  { echo "// Generated by toolchain/build.sh: CoreDNS $COREDNS_VERSION's main (coredns.go) with only the"
    echo "// plugins the real local node's Corefile uses (upstream imports all of core/plugin)."
    echo "package main"; echo; echo "import ("
    echo "	_ \"$COREDNS_MOD/core/dnsserver\""
    echo "	\"$COREDNS_MOD/coremain\""
    for p in "${COREDNS_PLUGINS[@]}"; do echo "	_ \"$COREDNS_MOD/plugin/$p\""; done
    echo ")"; echo; echo "func main() {"; echo "	coremain.Run()"; echo "}"; } >"$1/main.go"
  gofmt -w "$1/main.go"
}

build_coredns() {
  local info commit v got p
  # As upstream's Makefile: -X coremain.GitCommit=<git describe --always>, i.e. the release
  # commit abbreviated (named by the proxy's .info; the tag if it names none).
  info=$(moddownload "$COREDNS_MOD@$COREDNS_VERSION" Info)
  commit=$(python3 -c '
import json, sys
print((json.load(open(sys.argv[1])).get("Origin") or {}).get("Hash", "")[:7])' "$info")
  build_program "coredns-$COREDNS_VERSION" coredns "$COREDNS_MOD@$COREDNS_VERSION" -- \
    "$COREDNS_MOD (trimmed main)" "-X $COREDNS_MOD/coremain.GitCommit=${commit:-$COREDNS_VERSION}" coredns_main
  v=$("$PROGRAM_STAGE/coredns" -version | sed -n 1p)
  [[ "$v" == "CoreDNS-${COREDNS_VERSION#v}" ]] || die "built coredns reports '$v', expected CoreDNS-${COREDNS_VERSION#v}"
  # -plugins lists every registered plugin: ours and the few they import themselves
  # (forward: debug, dnstap; cache: prometheus; kubernetes: transfer; several: metadata).
  got=$("$PROGRAM_STAGE/coredns" -plugins | tr -d ' \t' | sed '/^$/d' | LC_ALL=C sort | tr '\n' ' ')
  for p in "${COREDNS_PLUGINS[@]}"; do
    [[ " $got" == *" $p "* ]] || die "built coredns lacks plugin $p (coredns -plugins: $got)"
  done
  hash_coredns
  install_entry "$PROGRAM_STAGE" "$COREDNS_ENTRY" "$COREDNS_HASH" \
    "coredns: $COREDNS_MOD@$COREDNS_VERSION (commit ${commit:-?}), plugins imported: ${COREDNS_PLUGINS[*]}
coredns -plugins: $got"
  CURRENT=""
}

# ------------------------------------------------------------------ pulumi on PATH?
# A pulumi on PATH that reports exactly the pin is used instead of building
# one (unless it is one of ours from the cache).
PATH_PULUMI=""
if p=$(command -v pulumi 2>/dev/null); then
  real=$(readlink -f "$p")
  case "$real" in
    "$(readlink -m "$CACHE")"/*) ;;
    *) if [[ "$(PULUMI_SKIP_UPDATE_CHECK=1 timeout 30 "$real" version 2>/dev/null || true)" == "v$PULUMI_PIN" ]]; then
         PATH_PULUMI=$real
         log "using pulumi v$PULUMI_PIN from PATH: $real"
       fi ;;
  esac
fi
PATH_LANGHOST=""
if [[ -n "$PATH_PULUMI" ]]; then
  d=$(dirname "$PATH_PULUMI")
  if [[ -x "$d/pulumi-language-python" && -x "$d/pulumi-language-python-exec" ]]; then
    PATH_LANGHOST=$d
    log "using pulumi-language-python from $d"
  fi
fi

# ------------------------------------------------------------------ check / build
need=()
[[ -n "$PATH_PULUMI" ]] || entry_ok "$PULUMI_ENTRY" "$PULUMI_HASH" pulumi || need+=(pulumi)
[[ -n "$PATH_LANGHOST" ]] || entry_ok "$LANGHOST_ENTRY" "$LANGHOST_HASH" pulumi-language-python pulumi-language-python-exec || need+=(langhost)
entry_ok "$K8S_ENTRY" "$K8S_HASH" pulumi-resource-kubernetes || need+=(kubernetes)
entry_ok "$RANDOM_ENTRY" "$RANDOM_HASH" pulumi-resource-random || need+=(random)
entry_ok "$DEX_ENTRY" "$DEX_HASH" dex || need+=(dex)
entry_ok "$OAUTH2_PROXY_ENTRY" "$OAUTH2_PROXY_HASH" oauth2-proxy || need+=(oauth2_proxy)
entry_ok "$ACTIONLINT_ENTRY" "$ACTIONLINT_HASH" actionlint || need+=(actionlint)
entry_ok "$HELM_ENTRY" "$HELM_HASH" helm || need+=(helm)
entry_ok "$COREDNS_ENTRY" "$COREDNS_HASH" coredns || need+=(coredns)

bin_hash() {
  printf '%s\n' "pulumi=${PATH_PULUMI:-$PULUMI_HASH}" "langhost=${PATH_LANGHOST:-$LANGHOST_HASH}" \
    "kubernetes=$K8S_HASH" "random=$RANDOM_HASH" "dex=$DEX_HASH" "oauth2-proxy=$OAUTH2_PROXY_HASH" \
    "actionlint=$ACTIONLINT_HASH" "helm=$HELM_HASH" "coredns=$COREDNS_HASH" | sha | cut -c1-12
}

declare -A LINKS
set_links() {
  LINKS=(
    [pulumi]="${PATH_PULUMI:-$PULUMI_ENTRY/pulumi}"
    [pulumi-language-python]="${PATH_LANGHOST:-$LANGHOST_ENTRY}/pulumi-language-python"
    [pulumi-language-python-exec]="${PATH_LANGHOST:-$LANGHOST_ENTRY}/pulumi-language-python-exec"
    [pulumi-resource-kubernetes]="$K8S_ENTRY/pulumi-resource-kubernetes"
    [pulumi-resource-random]="$RANDOM_ENTRY/pulumi-resource-random"
    [dex]="$DEX_ENTRY/dex"
    [oauth2-proxy]="$OAUTH2_PROXY_ENTRY/oauth2-proxy"
    [actionlint]="$ACTIONLINT_ENTRY/actionlint"
    [helm]="$HELM_ENTRY/helm"
    [coredns]="$COREDNS_ENTRY/coredns"
  )
}

if [[ "$MODE" == check ]]; then
  BIN_DIR="$CACHE/bin-$(bin_hash)"
  set_links
  missing=()
  for n in "${need[@]}"; do missing+=("cache entry for $n"); done
  for n in "${!LINKS[@]}"; do
    [[ -x "$BIN_DIR/$n" && "$BIN_DIR/$n" -ef "${LINKS[$n]}" ]] || missing+=("$BIN_DIR/$n")
  done
  if [[ -f "$SCRIPT_DIR/kube.sh" ]] && ! bash "$SCRIPT_DIR/kube.sh" "$BIN_DIR" --check; then
    missing+=("kube.sh components")
  fi
  if ! bash "$SCRIPT_DIR/knp.sh" "$BIN_DIR" --check; then
    missing+=("kube-network-policies (toolchain/knp.sh)")
  fi
  if ((${#missing[@]})); then
    log "incomplete: ${missing[*]}"
    log "run: bash toolchain/build.sh"
    exit 1
  fi
  log "complete: $BIN_DIR"
  printf '%s\n' "$BIN_DIR" >&3
  exit 0
fi

mkdir -p "$CACHE"
# One build at a time per cache.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
  log "another build.sh is running on $CACHE; waiting for it"
  flock 9
fi

# Scratch left by an interrupted run (we hold the lock, so nothing else owns it).
rm -rf "$CACHE"/.work-* "$CACHE"/.old.*

if ((${#need[@]})); then
  go_env
  log "to build: ${need[*]} (cache: $CACHE)"
  for t in "${need[@]}"; do
    start=$SECONDS
    "build_$t"
    log "$t done in $((SECONDS - start))s"
  done
fi

# ------------------------------------------------------------------ bin dir
BIN_DIR="$CACHE/bin-$(bin_hash)"
set_links
mkdir -p "$BIN_DIR"
for n in "${!LINKS[@]}"; do
  if [[ -e "$BIN_DIR/$n" && "$BIN_DIR/$n" -ef "${LINKS[$n]}" ]] && [[ $n != pulumi || ! -L "$BIN_DIR/$n" ]]; then
    continue
  fi
  if [[ $n == pulumi ]]; then
    # A hard link, not a symlink: the CLI looks for its language hosts next to
    # its resolved executable, so with a symlink it would only find
    # pulumi-language-python on PATH (and warn). Falls back to a symlink when
    # pulumi comes from PATH on another filesystem.
    ln -f "${LINKS[$n]}" "$BIN_DIR/$n.tmp" 2>/dev/null || ln -sfn "${LINKS[$n]}" "$BIN_DIR/$n.tmp"
    mv -f "$BIN_DIR/$n.tmp" "$BIN_DIR/$n"
  else
    ln -sfn "${LINKS[$n]}" "$BIN_DIR/$n"
  fi
done

if [[ -f "$SCRIPT_DIR/kube.sh" ]]; then
  CURRENT="the local Kubernetes control plane and node (toolchain/kube.sh)"
  bash "$SCRIPT_DIR/kube.sh" "$BIN_DIR"
  CURRENT=""
fi
# NetworkPolicies on the real node: kube-network-policies, patched to run here (toolchain/knp/).
CURRENT="kube-network-policies (toolchain/knp.sh)"
bash "$SCRIPT_DIR/knp.sh" "$BIN_DIR"
CURRENT=""

log "ready: $BIN_DIR"
printf '%s\n' "$BIN_DIR" >&3
