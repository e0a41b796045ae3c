"""What `make verify` proves on a real Langflow, one line per check, then a verdict.

The sequence, for one stack on one Langflow release:
  the config and flows are valid; Langflow is installed; the container is rendered;
  it starts within the startup probe's budget; login behaves as configured;
  every flow is loaded exactly once; an API key runs every smoke test and the
  default flow; memory stays clear of the limit; a stored variable, the API key
  and a signed token survive a restart (the secret key is stable); the flows are
  still there once; nothing was written outside the writable mounts; the logs
  are JSON; it stops on SIGTERM in time.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from contextlib import ExitStack
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from components.langflow_spec import ambassador_key_from_env, init_job_needed
from settings import ConfigError, StackSettings, load_settings
from settings.flows import FlowFile
from verify.install import ensure_langflow
from verify.postgres import PostgresUnavailable, ScratchPostgres
from verify.process import RUN_MARKER, LangflowProcess, StartFailed
from verify.render import RenderError, generated_credentials, render

# Memory is fine below this share of the limit: a flow run needs room above the idle process.
MEMORY_HEADROOM = 0.75
VARIABLE = ("MAKE_VERIFY_CHECK", "stored encrypted, read back after a restart")


class CheckFailed(Exception):
    pass


def _reported(error: Exception) -> Exception:
    """Marks an error whose FAIL line is out already, so that the run's verdict does not repeat it."""
    error.reported = True
    return error


@dataclass
class Report:
    out: Callable[[str], None] = print
    passed: list[str] = field(default_factory=list)
    failed: Optional[str] = None

    def ok(self, what: str, detail: str = "") -> None:
        self.passed.append(what)
        self.out(f"  ok    {what}" + (f" ({detail})" if detail else ""))

    def note(self, text: str) -> None:
        self.out(f"  note  {text}")

    def fail(self, what: str, reason: str) -> None:
        self.failed = self.failed or what  # the first failure: the rest may follow from it
        self.out(f"  FAIL  {what}: {reason}")

    def verdict(self) -> bool:
        """The closing line (PASSED, or FAILED with the first failure); whether the run passed."""
        summary = f"{len(self.passed)} checks passed" + (f", failed at: {self.failed}" if self.failed else "")
        self.out(f"{'FAILED' if self.failed else 'PASSED'}: {summary}")
        return self.failed is None


@dataclass
class Faults:
    """Deliberate faults, for the tests that prove each check can fail."""

    data_read_only: bool = False
    new_secret_key_on_restart: bool = False
    # A server that fails in start-up while `langflow run` keeps waiting for it.
    unreachable_database: bool = False


class Verification:
    def __init__(self, values: dict[str, Any], project_dir: Path, stack: str, version: Optional[str] = None,
                 report: Optional[Report] = None, faults: Optional[Faults] = None,
                 database_url: Optional[str] = None):
        self.values, self.project_dir, self.stack = values, project_dir, stack
        self.version = version
        self.report = report or Report()
        self.faults = faults or Faults()
        self.database_url = database_url
        self.process: Optional[LangflowProcess] = None
        # Marks this run's processes (verify/process.py); the environment may name it, for tests.
        self.run_id = os.environ.get(RUN_MARKER) or uuid.uuid4().hex

    # --- the sequence ----------------------------------------------------------------

    def run(self) -> bool:
        # A SIGTERM (a cancelled CI job) still stops Langflow: it unwinds through the cleanup below.
        previous = signal.signal(signal.SIGTERM, _exit_on_signal) if threading.current_thread() is threading.main_thread() \
            else None
        try:
            return self._run()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _run(self) -> bool:
        report = self.report
        report.out(f"make verify: stack {self.stack}")
        try:
            settings = self._settings()
            version = self.version or settings.config.image.tag
            report.out(f"  Langflow {version}")
            venv = ensure_langflow(version, log=report.note)
            report.ok("Langflow installed from its lock", str(venv))
            credentials = generated_credentials(settings.config.auth.enabled,
                                                ambassador_key_from_env(settings.config))
            with ExitStack() as stack:
                database_url = self._database(settings, stack)
                container = render(settings, credentials, database_url)
                for note in container.notes:
                    report.note(note)
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="langflow-verify-")))
                if init_job_needed(settings.config):
                    self._init_job(venv, render(settings, credentials, database_url, init_job=True), workdir)
                self.process = LangflowProcess(venv, container, workdir, self.run_id)
                stack.callback(self.process.cleanup)
                self._checks(settings, container, credentials)
        except (CheckFailed, StartFailed, RenderError, PostgresUnavailable) as error:
            if not getattr(error, "reported", False):
                report.fail("verify", str(error))
        except ConfigError as error:
            report.fail("config and flows are valid", str(error))
        return report.verdict()

    def _database(self, settings: StackSettings, stack: ExitStack) -> Optional[str]:
        """The database URL Langflow gets: the one given, or a scratch PostgreSQL's for a PostgreSQL stack."""
        config = settings.config.database
        if self.database_url or config.type != "postgresql":
            return self.database_url
        scratch = stack.enter_context(ScratchPostgres(config.postgresql, log=self.report.note))
        self.report.ok("the bootstrap SQL creates Langflow's role and database (run twice: idempotent)",
                       "a password with @ : / # % ? & ' \" and a space, percent-encoded in the URL")
        return scratch.url

    def _init_job(self, venv: Path, container, workdir: Path) -> None:
        """The init Job's command, run as the Job runs it: Langflow's start-up once, then exit 0."""
        what = "the init Job runs Langflow's start-up once and exits"
        init = LangflowProcess(venv, container, workdir / "init", self.run_id)
        init.workdir.mkdir()
        try:
            init.start()
            status, seconds = init.wait_exit(container.startup_budget_seconds)
        finally:
            init.cleanup()
        self._check(what, status == 0, f"exit status {status} after {seconds:.0f} s (the Job's deadline is "
                    f"{container.startup_budget_seconds} s)\n{init.log_tail()}", f"{seconds:.0f} s")

    def _settings(self) -> StackSettings:
        values = dict(self.values)
        if self.version:
            # The stack as it would run this release: version-specific settings follow the tag.
            values["image"] = {**(values.get("image") or {}), "tag": self.version}
        settings = load_settings(values, self.project_dir)
        tests = sum(len(f.smoke_tests) for f in settings.flows)
        self.report.ok("config and flows are valid", f"{len(settings.flows)} flows, {tests} smoke tests")
        return settings

    def _checks(self, settings: StackSettings, container, credentials: dict[str, str]) -> None:
        process, config = self.process, settings.config
        if self.faults.data_read_only:
            for volume in container.volumes:
                if volume.persistent:
                    volume.writable = False
        if self.faults.unreachable_database:
            container.env["LANGFLOW_DATABASE_URL"] = "postgresql://langflow:x@127.0.0.1:9/langflow"
        self._start("starts and /health_check is ok", container.startup_budget_seconds)
        self._cors(container.env.get("LANGFLOW_CORS_ORIGINS", ""))
        token = self._login(config, credentials)
        self._flows_loaded_once(settings.flows, token, "every flow is loaded exactly once")
        api_key = self._api_key(token)
        self._smoke_tests(settings, api_key)
        self._memory(container)
        variable_id = self._store_variable(token)
        # A new pod on the same volume; the same Secret, unless a fault rotates the key.
        self._stop("stops on SIGTERM within the grace period")
        if self.faults.new_secret_key_on_restart:
            container.env["LANGFLOW_SECRET_KEY"] = generated_credentials(False)["LANGFLOW_SECRET_KEY"]
        self._start("starts again on the same data", container.startup_budget_seconds)
        self._survives_restart(settings, token, api_key, variable_id)
        self._flows_loaded_once(settings.flows, token, "after a restart every flow is still there exactly once")
        self._logs()
        self._stop("stops on SIGTERM within the grace period, again")

    # --- one check each ------------------------------------------------------------------

    def _check(self, what: str, ok: bool, reason: str, detail: str = "", fatal: bool = True) -> None:
        """Reports the check; a failed one ends the run, unless it is not `fatal` (later checks still mean
        something: a smoke test's output says nothing of a restart)."""
        if not ok:
            self.report.fail(what, reason)
            if fatal:
                raise _reported(CheckFailed(reason))
            return
        self.report.ok(what, detail)

    def _start(self, what: str, budget: int) -> None:
        self.process.start()
        try:
            seconds = self.process.wait_ready(budget)
        except StartFailed as error:
            self.report.fail(what, str(error))
            raise _reported(error)
        self.report.ok(what, f"{seconds:.0f} s of the {budget} s the startup probe allows")

    def _stop(self, what: str) -> None:
        grace = 60
        seconds = self.process.stop(grace)
        self._check(what, seconds is not None, f"still running {grace} s after SIGTERM: the kubelet would kill it",
                    f"{seconds:.1f} s")

    def _cors(self, origins: str) -> None:
        """Browsers may call Langflow from the ingress hosts, and from nowhere else."""
        allowed = [o for o in origins.split(",") if o]
        stranger = "https://stranger.example"
        granted = {}
        for origin in [*allowed, stranger]:
            granted[origin] = self.process.response_headers("/api/v1/version", {"Origin": origin}).get(
                "access-control-allow-origin")
        wrong = [f"{o} got {granted[o]!r}" for o in allowed if granted[o] != o]
        if granted[stranger] is not None:
            wrong.append(f"another origin got {granted[stranger]!r}")
        self._check("CORS allows the ingress hosts only", not wrong, "; ".join(wrong),
                    ", ".join(allowed) or "no origin: there is no ingress")

    def _login(self, config, credentials: dict[str, str]) -> str:
        process = self.process
        if not config.auth.enabled:
            status, body = process.request("/api/v1/auto_login")
            self._check("login off: auto-login hands out a token", status == 200 and "access_token" in body,
                        f"GET /api/v1/auto_login answered {status}: {body}")
            self.report.note("with login off anyone who reaches the Service gets this superuser token")
            return body["access_token"]
        status, _ = process.request("/api/v1/flows/")
        self._check("login on: calls without credentials are refused", status in (401, 403),
                    f"GET /api/v1/flows/ without a token answered {status}")
        status, _ = process.login(config.auth.superuser, "not-the-password")
        self._check("login on: a wrong password is refused", status == 401, f"the wrong password got {status}")
        status, body = process.login(config.auth.superuser, credentials["LANGFLOW_SUPERUSER_PASSWORD"])
        self._check("login on: the superuser logs in with the stack's password", status == 200 and "access_token" in body,
                    f"POST /api/v1/login answered {status}: {body}")
        return body["access_token"]

    def _flows(self, token: str) -> list[dict[str, Any]]:
        status, body = self.process.request("/api/v1/flows/?get_all=true&header_flows=true", headers=_bearer(token))
        if status != 200 or not isinstance(body, list):
            raise CheckFailed(f"GET /api/v1/flows/ answered {status}: {str(body)[:300]}")
        return body

    def _flows_loaded_once(self, flows: list[FlowFile], token: str, what: str) -> None:
        listed = self._flows(token)
        wrong = []
        for flow in flows:
            matches = [f for f in listed if (flow.endpoint_name and f.get("endpoint_name") == flow.endpoint_name)
                       or (flow.flow_id and f.get("id") == flow.flow_id)]
            if len(matches) != 1:
                wrong.append(f"{flow.file_name}: found {len(matches)} times")
            elif flow.flow_id and matches[0]["id"] != flow.flow_id:
                wrong.append(f"{flow.file_name}: loaded with id {matches[0]['id']}, not {flow.flow_id}")
            elif flow.endpoint_name and matches[0].get("endpoint_name") != flow.endpoint_name:
                wrong.append(f"{flow.file_name}: endpoint name {matches[0].get('endpoint_name')!r}")
        self._check(what, not wrong, "; ".join(wrong), f"{len(flows)} of {len(listed)} flows listed")

    def _api_key(self, token: str) -> str:
        status, body = self.process.create_api_key(token, "make-verify")
        self._check("an API key is created", status in (200, 201) and isinstance(body, dict) and body.get("api_key"),
                    f"POST /api/v1/api_key/ answered {status}: {str(body)[:300]}")
        return body["api_key"]

    def _run_flow(self, flow: str, text: str, api_key: Optional[str]) -> tuple[int, Any]:
        body = json.dumps({"input_value": text, "input_type": "chat", "output_type": "chat"}).encode()
        headers = {"Content-Type": "application/json", **({"x-api-key": api_key} if api_key else {})}
        return self.process.request(f"/api/v1/run/{urllib.parse.quote(flow)}?stream=false", "POST", body, headers,
                                    timeout=120)

    def _smoke_tests(self, settings: StackSettings, api_key: str) -> None:
        runnable = [f for f in settings.flows if f.smoke_tests]
        if settings.flows:
            status, _ = self._run_flow(settings.flows[0].run_name, "no key", None)
            self._check("running a flow without an API key is refused", status in (401, 403),
                        f"POST /api/v1/run without x-api-key answered {status}")
        for flow in runnable:
            for test in flow.smoke_tests:
                status, body = self._run_flow(flow.run_name, test.input, api_key)
                texts = _texts(body)
                self._check(f"{flow.file_name}: {test.name}", status == 200 and any(test.expect in t for t in texts),
                            f"POST /api/v1/run/{flow.run_name} answered {status}; expected {test.expect!r} in the "
                            f"output, got {str(body)[:400]}", fatal=False)
        default = settings.default_flow
        if default:
            status, body = self._run_flow(default, "the default flow runs", api_key)
            self._check(f"the default flow {default} runs", status == 200,
                        f"POST /api/v1/run/{default} answered {status}: {str(body)[:400]}")
        elif not runnable:
            self.report.note("no smoke tests and no default flow: no flow was run")

    def _memory(self, container) -> None:
        used, limit = self.process.memory_bytes(), container.memory_limit_bytes
        detail = f"{used / 2**30:.2f} GiB" + (f" of a {limit / 2**30:.2f} GiB limit" if limit else "")
        if limit is None:
            self.report.note(f"memory after start and the flow runs: {detail}; no limit is set")
            return
        self._check("memory stays clear of the limit", used < limit * MEMORY_HEADROOM,
                    f"{detail}: more than {MEMORY_HEADROOM:.0%} of the limit right after start, so a flow run could "
                    "get the pod OOM-killed; raise resources.limits.memory", detail)

    def _store_variable(self, token: str) -> str:
        name, value = VARIABLE
        body = json.dumps({"name": name, "value": value, "type": "Generic", "default_fields": []}).encode()
        status, answer = self.process.request("/api/v1/variables/", "POST", body,
                                              {**_bearer(token), "Content-Type": "application/json"})
        self._check("a variable is stored (encrypted with the secret key)", status in (200, 201),
                    f"POST /api/v1/variables/ answered {status}: {str(answer)[:300]}")
        return answer["id"]

    def _survives_restart(self, settings: StackSettings, token: str, api_key: str, variable_id: str) -> None:
        status, body = self.process.request("/api/v1/users/whoami", headers=_bearer(token))
        self._check("a token signed before the restart is still accepted", status == 200,
                    f"GET /api/v1/users/whoami answered {status}: the secret key changed, so every user is logged out")
        status, body = self.process.request("/api/v1/variables/", headers=_bearer(token))
        stored = [v for v in body if v.get("id") == variable_id] if status == 200 and isinstance(body, list) else []
        self._check("the stored variable still decrypts", bool(stored) and stored[0].get("value") == VARIABLE[1],
                    f"read back {stored[0].get('value') if stored else body!r}: stored credentials cannot be decrypted "
                    "with the new secret key")
        flow = settings.default_flow or (settings.flows[0].run_name if settings.flows else None)
        if flow:
            status, body = self._run_flow(flow, "after a restart", api_key)
            self._check("the API key still runs a flow", status == 200,
                        f"POST /api/v1/run/{flow} answered {status}: {str(body)[:300]}")

    def _logs(self) -> None:
        errors = self.process.write_errors()
        self._check("nothing was written outside the writable mounts", not errors,
                    "a write hit the read-only root or a folder the pod may not write: " + " | ".join(errors[:5]))
        records, other = self.process.records()
        glued = [line for line in other if '{"event"' in line]
        if other:
            self.report.note(f"logs: {len(records)} JSON records; {len(other)} other lines, the start-up progress "
                             f"text `langflow run` writes to the same stream, which hides {len(glued)} records from a "
                             "line-by-line collector (see the README)")


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _texts(value: Any) -> list[str]:
    """Every string in an answer: where the chat output sits differs between releases."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []
