#!/usr/bin/env bash
# Every test. Builds (or reuses) the toolchain first so its progress is visible;
# with CI=true a toolchain that cannot be built fails the run instead of skipping tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# built <variable> <what> <script>: the script builds (or reuses) a tool and prints its folder last; without it
# the tests that need it skip, and with CI=true the run fails instead.
built() {
  local out
  if out=$(bash "$3"); then
    export "$1=$(tail -n 1 <<<"$out")"
  elif [ "${CI:-}" = true ]; then
    echo "error: $2 could not be built (see above); CI does not skip the tests that need it" >&2
    exit 1
  else
    echo "warning: no $2: the tests that need it will be skipped (CI=true makes this an error)" >&2
  fi
}
built LANGFLOW_TOOLCHAIN_BIN "the toolchain" toolchain/build.sh
# checkov's own virtualenv (scanner/requirements.txt, cached outside the repo), for tests/test_scanner.py.
built LANGFLOW_SCANNER_VENV "checkov's virtualenv" scripts/scanner-venv.sh
# Debian's packages the real-program tests run: PostgreSQL (the real-Langflow tests' scratch servers),
# HAProxy (the ambassador, the release its pinned image carries), Redis (oauth2-proxy's session store, the
# release its pinned image carries) and headless Chromium with its driver (the single sign-on test in a real
# browser).
packages=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || packages+=(postgresql)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || packages+=(haproxy)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || packages+=(redis-server)
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
  echo "installing Debian's ${packages[*]} for the real-program tests" >&2
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update >&2 && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y \
    --no-install-recommends "${packages[@]}" >&2
fi
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
# Every test, in streams side by side (the machine has two cores, and the suite is CPU-bound):
# - the real-Langflow tests (tests/langflow, the SSO test's Langflow and browser) in the background, at
#   full weight: they measure Langflow's own timing (its stop time holds the simulated pods to it);
# - the engine, local-cluster and unit tests in two more streams (one in the background, one in the
#   foreground) inside a cpu cgroup of low weight: they take what the first leaves, and fill each
#   other's waits on API servers, rollouts and deadlines. `nice` cannot do this: with the kernel's
#   autogroups it only ranks processes of one session, and each test program starts sessions of its own.
#   Without a cgroup to make (not root, no cpu controller) the engine tests run as one stream at equal
#   weight: a Langflow sharing a core with two more streams stopped too slowly (10.9 and 13.5 s against 4.2).
# Each stream has its own temporary folder; the background streams' reports are printed after the
# foreground one; the run fails if any failed.
scratch=$(mktemp -d)
background_pids=() engine_cgroup=""
cleanup() {
  kill "${background_pids[@]}" 2>/dev/null || true
  if [ -n "$engine_cgroup" ]; then  # whatever still runs in it goes back to the parent, then it goes
    while read -r pid; do echo "$pid" >"$(dirname "$engine_cgroup")/cgroup.procs" 2>/dev/null || true; done \
      <"$engine_cgroup/cgroup.procs"
    rmdir "$engine_cgroup" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
# cgroup v1's cpu controller (cpu.shares: 64 against the default 1024), else v2's (cpu.weight: 6 against 100).
cgroup=()
if [ -f /sys/fs/cgroup/cpu/cpu.shares ]; then
  cgroup=(/sys/fs/cgroup/cpu cpu.shares 64)
elif grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
  cgroup=(/sys/fs/cgroup cpu.weight 6)
fi
if [ ${#cgroup[@]} -gt 0 ] && mkdir "${cgroup[0]}/langflow-tests-$$" 2>/dev/null; then
  # The kernel made the knob: a real cgroup, not a folder.
  if [ -f "${cgroup[0]}/langflow-tests-$$/${cgroup[1]}" ] && echo "${cgroup[2]}" >"${cgroup[0]}/langflow-tests-$$/${cgroup[1]}"
  then
    engine_cgroup=${cgroup[0]}/langflow-tests-$$
  else
    rmdir "${cgroup[0]}/langflow-tests-$$" 2>/dev/null || true
  fi
fi
in_engine_cgroup() {  # runs a command inside the engine cgroup (as it is without one)
  if [ -n "$engine_cgroup" ]; then
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$engine_cgroup" "$@"
  else
    "$@"
  fi
}
background() {  # name, then the command of a background stream; its output goes to $scratch/<name>.log
  local name=$1; shift
  "$@" -p no:cacheprovider --durations=15 --basetemp="$scratch/$name" >"$scratch/$name.log" 2>&1 &
  background_pids+=($!)
  streams+=("$name")
}
langflow_stream=(tests/langflow tests/integration/test_sso_real.py)
# About half of the engine tests' time; the rest (the PostgreSQL drill, recovery, the local cluster, dry runs,
# unit tests) is the foreground's.
engine_stream=(tests/integration/test_releases_real.py tests/integration/test_stacks_real.py
               tests/integration/test_benchmark.py tests/integration/test_policy_real.py
               tests/integration/test_lifecycle_real.py)
# One real node per host at a time (localcluster/node.py): a stream's real-node test waits for another's.
export LOCALCLUSTER_NODE_LOCK_WAIT=1800
streams=()
background langflow .venv/bin/python -m pytest "${langflow_stream[@]}"
foreground_ignores=("${langflow_stream[@]/#/--ignore=}")
if [ -n "$engine_cgroup" ]; then
  background engine in_engine_cgroup .venv/bin/python -m pytest "${engine_stream[@]}"
  foreground_ignores+=("${engine_stream[@]/#/--ignore=}")
else
  echo "note: no cpu cgroup could be made here: the engine tests run as one stream" >&2
fi
status=0
in_engine_cgroup .venv/bin/python -m pytest --durations=25 --basetemp="$scratch/main" "${foreground_ignores[@]}" \
  || status=$?
for pid in "${background_pids[@]}"; do
  wait "$pid" || status=$((status ? status : $?))
done
for name in "${streams[@]}"; do
  echo
  echo "===== the $name stream (run beside the above) ====="
  cat "$scratch/$name.log"
done
exit "$status"
