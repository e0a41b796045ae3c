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
# Every test, in three streams side by side. The machine has two cores, and the unit, engine and
# local-cluster tests (the main stream, in the foreground) use about two thirds of one: they wait on the
# API server, rollouts and deadlines. The real-Langflow tests are CPU-bound starts; split in two streams
# in the background, they fill what the main stream leaves idle: `make verify` (every stack, release and
# fault), and the drills beside the policy pack's runs and the quick benchmark. Each stream has its own
# temporary folder; the background streams' reports are printed after the foreground one; the run fails if
# any failed.
scratch=$(mktemp -d)
background_pids=()
trap 'kill "${background_pids[@]}" 2>/dev/null || true; rm -rf "$scratch"' EXIT
background() {  # name, then the test paths of one background stream
  local name=$1; shift
  .venv/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp="$scratch/$name" "$@" \
    >"$scratch/$name.log" 2>&1 &
  background_pids+=($!)
}
verify_stream=(tests/langflow/test_verify.py)
drill_stream=(tests/langflow/test_flow_sync_real.py tests/langflow/test_backups_real.py
              tests/integration/test_policy_real.py tests/integration/test_benchmark.py)
background verify "${verify_stream[@]}"
background drills "${drill_stream[@]}"
status=0
ignored=("${verify_stream[@]/#/--ignore=}" "${drill_stream[@]/#/--ignore=}")
.venv/bin/python -m pytest --durations=25 --basetemp="$scratch/rest" "${ignored[@]}" || status=$?
for pid in "${background_pids[@]}"; do
  wait "$pid" || status=$((status ? status : $?))
done
for name in verify drills; do
  echo
  echo "===== the $name stream (run beside the above) ====="
  cat "$scratch/$name.log"
done
exit "$status"
