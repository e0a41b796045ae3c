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
# Every test, in three streams side by side on the machine's two cores:
# - `make verify` and the flow sync on two replicas (CPU-bound Langflow starts, and the checks that time
#   Langflow's stop and the ambassador's answers), in the background, at normal priority;
# - the rest in two streams at a lower priority (nice): one in the background (releases, stacks, the quick
#   benchmark, the policy pack's runs, the SQLite upgrade drill), and the main one in the foreground (the
#   other engine and local-cluster tests, the PostgreSQL drill, the unit tests). The engine tests wait on API
#   servers, rollouts and deadlines about a quarter of their time; the two streams fill each other's waits.
# The first stream keeps a whole core: shared as an equal, a Langflow stopped too slowly for the check that
# holds the simulated pods to its stop time. Each stream has its own temporary folder; the background
# streams' reports are printed after the foreground one; the run fails if any failed.
scratch=$(mktemp -d)
background_pids=()
trap 'kill "${background_pids[@]}" 2>/dev/null || true; rm -rf "$scratch"' EXIT
langflow_stream=(tests/langflow/test_verify.py tests/langflow/test_flow_sync_real.py)
engine_stream=(tests/integration/test_releases_real.py tests/integration/test_stacks_real.py
               tests/integration/test_benchmark.py tests/integration/test_policy_real.py
               tests/langflow/test_backups_real.py)
background() {  # name, priority (nice), then the test paths of one background stream
  local name=$1 priority=$2; shift 2
  nice -n "$priority" .venv/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp="$scratch/$name" \
    "$@" >"$scratch/$name.log" 2>&1 &
  background_pids+=($!)
}
background langflow 0 "${langflow_stream[@]}"
background engine 5 "${engine_stream[@]}"
status=0
nice -n 5 .venv/bin/python -m pytest --durations=25 --basetemp="$scratch/main" \
  "${langflow_stream[@]/#/--ignore=}" "${engine_stream[@]/#/--ignore=}" || status=$?
for pid in "${background_pids[@]}"; do
  wait "$pid" || status=$((status ? status : $?))
done
for name in langflow engine; do
  echo
  echo "===== the $name stream (run beside the above) ====="
  cat "$scratch/$name.log"
done
exit "$status"
