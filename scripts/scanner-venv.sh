#!/usr/bin/env bash
# The Kubernetes scanner's virtualenv (checkov, scanner/requirements.txt): its own, apart from the project's, so
# that checkov's many dependencies never meet the project's lock. Like scripts/venv.sh: kept outside the repo,
# keyed by its lock's hash, built once under a lock from the hash-locked file (--require-hashes; --no-deps, the
# lock holding every dependency, and `pip check` proving it complete), and only complete once `.complete` is there.
# Prints the virtualenv's folder (the last and only line on stdout); progress goes to stderr.
# Usage: scripts/scanner-venv.sh [python]   (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
cache_root=${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}
venv="$cache_root/checkov-$(sha256sum scanner/requirements.txt | cut -c1-12)"
mkdir -p "$cache_root"
(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "[scanner] building checkov's virtualenv in $venv (scanner/requirements.txt)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
      -r scanner/requirements.txt >&2
    "$venv/bin/pip" check --disable-pip-version-check >/dev/null
    touch "$venv/.complete"
  fi
) 9>"$venv.lock"
echo "$venv"
