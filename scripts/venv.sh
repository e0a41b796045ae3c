#!/usr/bin/env bash
# The project's virtualenv, kept outside the repo and keyed by the lock's hash, so that a fresh clone (CI)
# reuses it at once: `.venv` becomes a link to it. Built once, under a lock, from the hash-locked
# requirements.txt. A `.venv` that is a real folder (an older checkout) is used as it is.
# The lock holds every dependency, so pip installs it as it is (--no-deps): resolving again, pip 23.2 refuses a
# dependency's extra (selenium's urllib3[socks]) in hash-checking mode. `pip check` then proves it complete.
# Usage: scripts/venv.sh <python> <link>
set -euo pipefail
cd "$(dirname "$0")/.."
python=$1 link=$2
cache_root=${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}
venv="$cache_root/venv-$(sha256sum requirements.txt | cut -c1-12)"
if [ -d "$link" ] && [ ! -L "$link" ]; then
  "$link/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.txt
  "$link/bin/pip" check --disable-pip-version-check >/dev/null
  exit 0
fi
mkdir -p "$cache_root"
(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements.txt
    "$venv/bin/pip" check --disable-pip-version-check >/dev/null
    touch "$venv/.complete"
  fi
) 9>"$venv.lock"
ln -sfn "$venv" "$link"
