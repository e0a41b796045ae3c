#!/usr/bin/env bash
# Every test. Builds (or reuses) the toolchain first so its progress is visible;
# with CI=true a toolchain that cannot be built fails the run instead of skipping tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if bin_out=$(bash toolchain/build.sh); then
  export LANGFLOW_TOOLCHAIN_BIN=$(tail -n 1 <<<"$bin_out")
elif [ "${CI:-}" = true ]; then
  echo "error: the toolchain could not be built (see above); CI does not skip integration tests" >&2
  exit 1
else
  echo "warning: no toolchain: integration tests will be skipped (CI=true makes this an error)" >&2
fi
# Debian's packages the real-program tests run: PostgreSQL (the real-Langflow tests' scratch servers) and
# HAProxy (the ambassador, the release its pinned image carries).
packages=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || packages+=(postgresql)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || packages+=(haproxy)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing Debian's ${packages[*]} for the real-program tests" >&2
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update >&2 && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y \
    --no-install-recommends "${packages[@]}" >&2
fi
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# Every test, in three streams side by side. The machine has two cores, and two streams left one of them
# idle a third of the time (the engine and the local cluster mostly wait):
#   langflow  - the real-Langflow checks (tests/langflow but the backups drill; CPU-bound starts);
#   releases  - the release and rollback runs on the engine (mostly waiting), then the backups drill;
#   rest      - everything else, in the foreground.
# Each has its own temporary folder; the background streams' reports are printed after the foreground
# one; the run fails if any failed.
scratch=$(mktemp -d)
background=()
trap 'kill "${background[@]}" 2>/dev/null || true; rm -rf "$scratch"' EXIT
stream() {  # stream <name> <pytest arguments...>: in the background, its output kept for later
  local name=$1; shift
  .venv/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp="$scratch/$name" "$@" \
    >"$scratch/$name.log" 2>&1 &
  background+=($!)
}
stream langflow tests/langflow --ignore=tests/langflow/test_backups_real.py
stream releases tests/integration/test_releases_real.py tests/langflow/test_backups_real.py
status=0
.venv/bin/python -m pytest --durations=25 --basetemp="$scratch/rest" --ignore=tests/langflow \
  --ignore=tests/integration/test_releases_real.py || status=$?
for pid in "${background[@]}"; do
  wait "$pid" || status=$((status ? status : $?))
done
for name in langflow releases; do
  echo
  echo "===== stream $name (run beside the above) ====="
  cat "$scratch/$name.log"
done
exit "$status"
