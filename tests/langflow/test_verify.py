"""`make verify` on a real Langflow process: every stack on every verified release, and each fault it must catch.

Marker `langflow`: installs Langflow from verify/locks/ (cached) and starts it in the sandbox.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from localcluster.stages import LANGFLOW_STOP_SECONDS
from settings.model import LANGFLOW_DEFAULT_TAG, VERIFIED_LANGFLOW_VERSIONS
from settings.stack_file import stack_values
from verify.checks import Faults, Report, Verification
from verify.process import RUN_MARKER, processes_of_run

pytestmark = pytest.mark.langflow
ROOT = Path(__file__).resolve().parents[2]
NEWEST = VERIFIED_LANGFLOW_VERSIONS[-1]


def verify(stack: str, version: str = LANGFLOW_DEFAULT_TAG, project: Path = ROOT, **faults) -> tuple[bool, str]:
    lines: list[str] = []
    verification = Verification(stack_values(project, stack), project, stack, version,
                                report=Report(out=lines.append), faults=Faults(**faults))
    ok = verification.run()
    assert processes_of_run(verification.run_id) == [], "a Langflow process outlived make verify"
    return ok, "\n".join(lines)


def project_copy(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "flows"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    return tmp_path


COMMON = ["config and flows are valid", "Langflow installed from its lock", "starts and /health_check is ok",
          "CORS allows the ingress hosts only",
          "every flow is loaded exactly once", "an API key is created", "running a flow without an API key is refused",
          "echo.json: returns the input unchanged", "the default flow echo runs", "memory stays clear of the limit",
          "starts again on the same data", "a token signed before the restart is still accepted",
          "the stored variable still decrypts", "the API key still runs a flow",
          "after a restart every flow is still there exactly once", "nothing was written outside the writable mounts",
          "stops on SIGTERM within the grace period"]
LOGIN_ON = ["login on: calls without credentials are refused", "login on: a wrong password is refused",
            "login on: the superuser logs in with the stack's password"]


@pytest.mark.parametrize("version", VERIFIED_LANGFLOW_VERSIONS)
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_works_on_a_real_langflow(stack, version):
    if (stack, version) == ("dev", LANGFLOW_DEFAULT_TAG):
        # Once through the user's own command.
        done = subprocess.run(["make", "-s", "verify", f"STACK={stack}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=900)
        ok, output = done.returncode == 0, done.stdout + done.stderr
    else:
        ok, output = verify(stack, version)
    assert ok, output
    assert f"Langflow {version}" in output and output.rstrip().splitlines()[-1].startswith("PASSED")
    for check in COMMON + (LOGIN_ON if stack == "prod" else ["login off: auto-login hands out a token"]):
        assert f"  ok    {check}" in output, f"{check!r} did not pass:\n{output}"
    # The local cluster's simulated Langflow pods take as long to stop as this real one did.
    stops = [float(s) for s in re.findall(r"stops on SIGTERM within the grace period(?:, again)? \((\d+\.\d) s\)", output)]
    assert len(stops) == 2 and all(s / 2 <= LANGFLOW_STOP_SECONDS <= s * 2 for s in stops), (stops, LANGFLOW_STOP_SECONDS)


def test_a_broken_flow_fails_before_langflow_starts(tmp_path):
    project = project_copy(tmp_path)
    (project / "flows" / "bare.json").write_text(
        '{"name": "Bare", "endpoint_name": "bare", "data": {"nodes": [{"id": "ChatInput-1", "data": {"id": "ChatInput-1", '
        '"type": "ChatInput", "node": {"template": {"input_value": {"value": ""}}}}}], "edges": []}}')
    ok, output = verify("dev", project=project)
    assert not ok
    assert "FAIL  config and flows are valid" in output and "flows/bare.json: data.nodes[0] (ChatInput-1)" in output
    assert "'_type' is missing" in output and "Langflow installed" not in output


def test_an_unwritable_data_volume_fails_fast_with_the_reason():
    started = time.monotonic()
    ok, output = verify("dev", data_read_only=True)
    assert not ok and "FAIL  starts and /health_check is ok" in output
    assert "Read-only file system: '/app/data/" in output, output
    assert time.monotonic() - started < 120  # not the startup probe's 5 minutes


def test_a_server_that_dies_in_start_up_fails_fast():
    """`langflow run` waits forever for a server that died: make verify must not."""
    started = time.monotonic()
    ok, output = verify("dev", unreachable_database=True)
    assert not ok and "FAIL  starts and /health_check is ok" in output
    assert "the server process ended during start-up" in output or "exited" in output, output
    assert time.monotonic() - started < 120


def test_a_flow_that_does_not_do_what_its_smoke_test_says_and_a_secret_key_that_changes_on_restart_fail(tmp_path):
    """Two faults in one run (two Langflow starts, not three): a failed smoke test is reported and the checks go
    on, so the secret key that a fault changes on restart is caught too."""
    project = project_copy(tmp_path)
    (project / "flows" / "echo.smoke.yaml").write_text("- name: answers pong\n  input: ping\n  expect: pong\n"
                                                       "- name: answers ping\n  input: ping\n  expect: ping\n")
    ok, output = verify("dev", NEWEST, project=project, new_secret_key_on_restart=True)
    assert not ok
    assert "FAIL  echo.json: answers pong: POST /api/v1/run/echo answered 200; expected 'pong'" in output, output
    assert "  ok    echo.json: answers ping" in output and "  ok    starts again on the same data" in output, output
    assert "FAIL  a token signed before the restart is still accepted" in output, output
    assert "the secret key changed" in output
    assert output.rstrip().splitlines()[-1].endswith("failed at: echo.json: answers pong"), output


def test_the_sandbox_refuses_writes_outside_the_pod_s_writable_mounts(tmp_path):
    from verify.sandbox import Mount, Sandbox, prepare_writable

    data, flows = tmp_path / "data", tmp_path / "flows"
    prepare_writable(data, 1000, 1000)
    flows.mkdir()
    sandbox = Sandbox([Mount("/app/data", str(data), True), Mount("/app/flows", str(flows), False)],
                      uid=1000, gid=0, groups=[1000], working_dir="/app")
    script = ("touch /app/data/ok && echo data-ok; touch /app/flows/x || echo flows-ro; "
              "touch /etc/x || echo root-ro; touch /usr/x || echo usr-ro; id -u")
    done = subprocess.run(sandbox.command(["/bin/sh", "-c", script]), capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.stdout.split() == ["data-ok", "flows-ro", "root-ro", "usr-ro", "1000" if os.geteuid() == 0 else str(os.geteuid())], done
    assert (data / "ok").exists() and not (flows / "x").exists()


def langflow_processes(run_id: str) -> list[int]:
    def command(pid: int) -> str:
        try:
            return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return ""
    return [pid for pid in processes_of_run(run_id) if "langflow\0run" in command(pid)]


def test_killing_make_verify_ends_langflow_too(tmp_path):
    """SIGKILL leaves no cleanup code to run: the PID namespace and parent-death signals must do it."""
    run_id = f"killed-{os.getpid()}"
    output = tmp_path / "verify.log"
    with output.open("w") as log:
        verify_run = subprocess.Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "verify", "--stack", "dev"],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, RUN_MARKER: run_id})
    try:
        # Killed once Langflow's whole tree runs: `langflow run`, its server and the server's worker (three
        # processes of one command line). Its start-up, which the worker then does, adds no process to end.
        deadline = time.monotonic() + 300
        while len(langflow_processes(run_id)) < 3:
            assert verify_run.poll() is None and time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
    finally:
        verify_run.kill()
        verify_run.wait()
    deadline = time.monotonic() + 20
    while processes_of_run(run_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_of_run(run_id) == []
