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
# Debian's packages the real-program tests run: PostgreSQL (the real-Langflow tests' scratch servers),
# HAProxy (the ambassador, the release its pinned image carries) and headless Chromium with its driver (the
# single sign-on test in a real browser).
packages=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || packages+=(postgresql)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || packages+=(haproxy)
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
# Every test, in two streams side by side (the machine has two cores): the real-Langflow tests
# (tests/langflow, CPU-bound starts), the policy pack's runs and three short engine modules (they balance
# the streams) in the background, everything else (unit tests, the engine and the local cluster) in the
# foreground. A third stream does not help: both keep a core busy, and a Langflow that shares a core, even
# with the others at a lower priority, stops too slowly for the check that holds the simulated pods to its
# stop time (measured: 10.9 and 13.5 s against 4.2). Each has its own temporary folder; the
# background stream's report is printed after the foreground one; the run fails if either failed.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
background=(tests/langflow tests/integration/test_policy_real.py tests/integration/test_sso_real.py
            tests/integration/test_cluster_check.py tests/integration/test_ambassador_key_real.py)
.venv/bin/python -m pytest -p no:cacheprovider --durations=15 --basetemp="$scratch/langflow" "${background[@]}" \
  >"$scratch/langflow.log" 2>&1 &
langflow_stream=$!
trap 'kill "$langflow_stream" 2>/dev/null || true; rm -rf "$scratch"' EXIT
status=0
.venv/bin/python -m pytest --durations=25 --basetemp="$scratch/rest" "${background[@]/#/--ignore=}" || status=$?
wait "$langflow_stream" || status=$((status ? status : $?))
echo
echo "===== ${background[*]} (run beside the above) ====="
cat "$scratch/langflow.log"
exit "$status"
