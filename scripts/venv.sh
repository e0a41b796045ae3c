#!/usr/bin/env bash
# A virtualenv kept outside the repo and keyed by its lock's hash, so that a fresh clone (CI) reuses it at once:
# the project's (`.venv` becomes a link to it) and checkov's (scripts/scanner-venv.sh). Built once, under a lock,
# from the hash-locked file, and only complete once `.complete` is there. A `.venv` that is a real folder (an
# older checkout) is used as it is.
# The lock holds every dependency, so pip installs it as it is (--no-deps): resolving again, pip 23.2 refuses a
# dependency's extra (selenium's urllib3[socks]) in hash-checking mode. `pip check` then proves it complete.
# Usage: scripts/venv.sh <python> <link> [<requirements> <name>]   (default requirements.txt, venv)
#   <link> `-`: no link; the virtualenv's folder is printed (the only line on stdout; progress goes to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$1 link=$2 requirements=${3:-requirements.txt} name=${4:-venv}
cache_root=${LANGFLOW_TOOLCHAIN_CACHE:-$HOME/.cache/langflow-pulumi-toolchain}
venv="$cache_root/$name-$(sha256sum "$requirements" | cut -c1-12)"
install() {  # install <venv>
  "$1/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$requirements" >&2
  "$1/bin/pip" check --disable-pip-version-check >/dev/null
}
if [ "$link" != - ] && [ -d "$link" ] && [ ! -L "$link" ]; then
  install "$link"
  exit 0
fi
mkdir -p "$cache_root"
(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "[venv] building the $name virtualenv in $venv ($requirements)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    install "$venv"
    touch "$venv/.complete"
  fi
) 9>"$venv.lock"
if [ "$link" = - ]; then
  echo "$venv"
else
  ln -sfn "$venv" "$link"
fi
