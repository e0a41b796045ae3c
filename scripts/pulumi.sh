#!/usr/bin/env bash
# Run a Pulumi command for one stack in its environment (scripts/stack-env.sh):
#   scripts/pulumi.sh <stack> <pulumi args...>
set -euo pipefail
STACK=${1:?usage: scripts/pulumi.sh <stack> <pulumi args...>}
shift
exec bash "$(dirname "$0")/stack-env.sh" "$STACK" pulumi "$@" --stack "$STACK"
