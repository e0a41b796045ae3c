#!/usr/bin/env bash
# Run a command in one stack's environment, with this project's defaults:
#   scripts/stack-env.sh <stack> <command...>
# - the toolchain built from Go modules (toolchain/build.sh), unless a matching pulumi is on PATH;
# - state in a self-managed backend outside the repo (no Pulumi Cloud account), unless
#   PULUMI_BACKEND_URL names one;
# - the dev stack's documented passphrase; other stacks must bring their own;
# - no kube context on this machine: the local cluster, with a real node where one can start here (root,
#   containerd: the pods run as containers), else simulated nodes (kwok: no container runs);
# - the stack exists.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK=${1:?usage: scripts/stack-env.sh <stack> <command...>}
shift

STATE_DIR=${LANGFLOW_STATE_DIR:-$HOME/.local/state/langflow-pulumi}
backend=file://$STATE_DIR/backend
export PULUMI_HOME=${PULUMI_HOME:-$STATE_DIR/pulumi-home}
export PULUMI_SKIP_UPDATE_CHECK=1
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SELF_MANAGED_STATE_LOCKING=1
# The providers come from the plugin store (toolchain/plugins.sh links them there), not from PATH:
# Pulumi warns about every ambient plugin on every command.
export PULUMI_IGNORE_AMBIENT_PLUGINS=true

if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  if [ "$STACK" = dev ]; then
    export PULUMI_CONFIG_PASSPHRASE=langflow-dev  # documented: dev holds no real secrets
  else
    echo "error: stack '$STACK' needs PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE" >&2
    exit 2
  fi
fi

BIN=$(bash "$ROOT/toolchain/build.sh" | tail -n 1)
export PATH="$BIN:$PATH"
bash "$ROOT/toolchain/plugins.sh" "$BIN" "$PULUMI_HOME"

# A kube context from KUBECONFIG or ~/.kube/config wins; otherwise the local cluster.
kubeconfig=${KUBECONFIG:-$HOME/.kube/config}
if [ "${LANGFLOW_CLUSTER:-auto}" = local ] || { [ "${LANGFLOW_CLUSTER:-auto}" = auto ] && [ ! -s "${kubeconfig%%:*}" ]; }; then
  cluster_dir="$STATE_DIR/local-cluster"
  # The simulated cluster keeps its own state: a new cluster starts empty, and so does its state.
  backend=file://$STATE_DIR/local-cluster-backend
  if ! "$ROOT/.venv/bin/python" -m localcluster status --dir "$cluster_dir" >/dev/null 2>&1; then
    echo "No Kubernetes context found: starting the local cluster in $cluster_dir" >&2
    rm -rf "${backend#file://}"
    (cd "$ROOT" && .venv/bin/python -m localcluster up --dir "$cluster_dir" --bin "$BIN" \
      --node "${LANGFLOW_LOCAL_NODE:-auto}") >&2
  fi
  export KUBECONFIG="$cluster_dir/kubeconfig"
  # releases/ serves Langflow on 127.0.0.1 after `make up` when the pods run for real.
  export LANGFLOW_LOCAL_CLUSTER_DIR="$cluster_dir"
  if grep -q '"node": "real"' "$cluster_dir/localcluster.json" 2>/dev/null; then
    echo "NOTE: deploying to the local cluster: its pods run as containers on this machine's real node." >&2
  else
    echo "NOTE: deploying to the local simulated cluster: the API server is real, the nodes and" >&2
    echo "      pods are simulated by kwok (no container runs)." >&2
  fi
  echo "      Stop it with: make cluster-down" >&2
fi

export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-$backend}
case $PULUMI_BACKEND_URL in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
mkdir -p "$PULUMI_HOME"
cd "$ROOT"
# Every command run here names its stack (--stack): select (and create) it only when it does not exist yet,
# which a file backend shows without a CLI run (0.2 to 0.4 s off every command).
project=$(sed -n 's/^name: *//p' Pulumi.yaml)
state=${PULUMI_BACKEND_URL#file://}/.pulumi/stacks/$project/$STACK.json
case $PULUMI_BACKEND_URL in
  file://*) [ -f "$state" ] || [ -f "$state.gz" ] || pulumi stack select --create "$STACK" >/dev/null ;;
  *) pulumi stack select --create "$STACK" >/dev/null ;;
esac
exec "$@"
