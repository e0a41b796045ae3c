"""The upgrade, rollback and restore drill: the backup Jobs' pods, run on real Langflow databases.

With the stack's container (as `make verify` renders it) and the backup pods the program renders
(components/backups/spec.py), on one database (the stack's: SQLite on the data volume, or a scratch
PostgreSQL):
  1. the old Langflow holds a flow, a user, an API key and an encrypted variable;
  2. the snapshot Job runs, then the new Langflow starts and migrates the database;
  3. a restore without confirmation is refused and the database is left as it was;
  4. a confirmed restore brings the snapshot back, with the old schema;
  5. a scheduled backup of it, restored onto an emptied database, and the old Langflow serves the data
     it held before the upgrade: both restores, proven by one start.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

from components.backups import spec as backup_spec
from components.langflow_spec import ambassador_key_from_env, init_job_needed
from settings.backups import backup_engine
from settings import StackSettings
from verify.checks import CheckFailed, Report, Verification, _bearer
from verify.install import ensure_langflow
from verify.jobs import run_pod
from verify.postgres import PostgresUnavailable, server_binaries
from verify.process import LangflowProcess, StartFailed, interpreter_home
from verify.render import DATABASE_URL_SECRET, RenderError, generated_credentials, render
from verify.sandbox import prepare_writable

DRILL_USER = "drill-user"


class UpgradeDrill(Verification):
    def __init__(self, values: dict[str, Any], project_dir: Path, stack: str, old: str, new: str,
                 report: Optional[Report] = None, database_url: Optional[str] = None):
        super().__init__(values, project_dir, stack, old, report, database_url=database_url)
        self.old, self.new = old, new

    def _run(self) -> bool:
        report = self.report
        report.out(f"upgrade drill: stack {self.stack}, Langflow {self.old} -> {self.new} -> {self.old}")
        try:
            self.version = self.old
            old_settings = self._settings()
            self.version = self.new
            new_settings = self._settings()
            engine = backup_engine(old_settings.config.backups, old_settings.config.database)
            self._check("the stack takes backups", engine is not None, "backups are off for this stack")
            venvs = {v: ensure_langflow(v, log=report.note) for v in (self.old, self.new)}
            credentials = generated_credentials(old_settings.config.auth.enabled,
                                                ambassador_key_from_env(new_settings.config))
            with ExitStack() as stack:
                self.database_url = self._database(old_settings, stack)
                self.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="langflow-drill-")))
                self.backups = self.workdir / "backups"
                prepare_writable(self.backups, 1000, 1000)
                self._drill(engine, old_settings, new_settings, venvs, credentials, stack)
        except (CheckFailed, StartFailed, RenderError, PostgresUnavailable) as error:
            if not getattr(error, "reported", False):
                report.fail("drill", str(error))
        return report.verdict()

    def _drill(self, engine: str, old: StackSettings, new: StackSettings, venvs: dict[str, Path],
               credentials: dict[str, str], stack: ExitStack) -> None:
        config = old.config
        # 1. the old release, with data worth keeping
        token = self._serve(old, venvs[self.old], credentials, stack)
        status, _ = self.process.request("/api/v1/users/", "POST",
                                         json.dumps({"username": DRILL_USER, "password": "drill-Passw0rd!"}).encode(),
                                         {"Content-Type": "application/json"})
        self._check("a user is created", status in (200, 201), f"POST /api/v1/users/ answered {status}")
        api_key = self._api_key(token)
        variable_id = self._store_variable(token)
        self._stop(f"Langflow {self.old} stops")
        old_revision = self._revision(engine)
        # 2. the release of the new version: its snapshot Job, then the new Langflow migrates
        run = self._job(engine, new, venvs[self.new], "backup", "snapshot",
                        backup_spec.snapshot_label(self.new), config.backups.snapshots_kept)
        self._check("the snapshot Job copies the database", run.ok, run.output, _said(run.output, "snapshot:"))
        if init_job_needed(new.config):
            # As the release does: the new version's init Job migrates, before any pod of it starts.
            self._init_job(venvs[self.new], render(new, credentials, self.database_url, init_job=True), self.workdir)
        self._serve(new, venvs[self.new], credentials, stack)
        self._stop(f"Langflow {self.new} stops")
        new_revision = self._revision(engine)
        self._check(f"Langflow {self.new} migrated the schema", new_revision != old_revision,
                    f"the schema revision is still {old_revision}", f"{old_revision} -> {new_revision}")
        # 3. no confirmation: refused, nothing changed
        before = self._fingerprint(engine)
        run = self._job(engine, new, venvs[self.new], "restore", env={"BACKUP_KIND": "snapshot"})
        self._check("a restore without confirmation is refused", not run.ok and run.status == 2
                    and "CONFIRM=restore" in run.output, run.output, run.output.splitlines()[-1][:160])
        self._check("... and the database is unchanged", self._fingerprint(engine) == before, "the database changed")
        # 4. confirmed: the snapshot comes back, with the old schema
        run = self._job(engine, new, venvs[self.new], "restore",
                        env={"BACKUP_KIND": "snapshot", "BACKUP_LABEL": backup_spec.snapshot_label(self.new),
                             backup_spec.RESTORE_CONFIRM_ENV: "restore"})
        self._check("a confirmed restore brings the snapshot back", run.ok and self._revision(engine) == old_revision,
                    run.output, f"schema {self._revision(engine)}")
        # 5. a scheduled backup of it, an emptied database, and that backup restored: then the old release serves
        # the data it held before the upgrade, through both restores
        run = self._job(engine, old, venvs[self.old], "backup", "scheduled", "scheduled", config.backups.scheduled_kept)
        self._check("a scheduled backup is taken", run.ok, run.output)
        self._empty(engine)
        run = self._job(engine, old, venvs[self.old], "restore",
                        env={"BACKUP_KIND": "scheduled", backup_spec.RESTORE_CONFIRM_ENV: "restore"})
        self._check("the scheduled backup restores onto an emptied database", run.ok, run.output)
        self._old_data_served(old, venvs[self.old], credentials, stack, api_key, variable_id,
                              f"Langflow {self.old} serves the pre-upgrade data")
        self.report.note(f"backups kept: {', '.join(sorted(p.name for p in self.backups.glob('*.json')))}")

    # --- steps -------------------------------------------------------------------------

    def _serve(self, settings: StackSettings, venv: Path, credentials: dict[str, str], stack: ExitStack) -> str:
        container = render(settings, credentials, self.database_url)
        self.process = LangflowProcess(venv, container, self.workdir, self.run_id)
        stack.callback(self.process.kill)
        self._start(f"Langflow {settings.config.image.tag} starts", container.startup_budget_seconds)
        return self._login(settings.config, credentials)

    def _old_data_served(self, settings: StackSettings, venv: Path, credentials: dict[str, str], stack: ExitStack,
                         api_key: str, variable_id: str, what: str) -> None:
        token = self._serve(settings, venv, credentials, stack)
        status, users = self.process.request("/api/v1/users/?limit=100", headers=_bearer(token))
        names = [u.get("username") for u in users.get("users", [])] if isinstance(users, dict) else []
        self._check(f"{what}: the user", DRILL_USER in names, f"GET /api/v1/users/ answered {status}: {names}")
        self._flows_loaded_once(settings.flows, token, f"{what}: the flows, once each")
        self._survives_restart(settings, token, api_key, variable_id)
        self._stop(f"Langflow {settings.config.image.tag} stops")

    def _job(self, engine: str, settings: StackSettings, venv: Path, action: str, kind: str = "", label: str = "",
             keep: int = 3, env: Optional[dict[str, str]] = None):
        """The backup or restore pod of `settings`' release, as the program renders it."""
        config = settings.config
        subject = backup_spec.BackupSubject(
            app=config.name, namespace=config.namespace, engine=engine, langflow_image=config.image.reference(),
            langflow_version=config.image.tag, data_claim="data", postgres_image="postgres",
            database_url_secret=DATABASE_URL_SECRET)
        pod = backup_spec.backup_pod(subject, "tool", action, kind, label, keep)
        work = Path(tempfile.mkdtemp(dir=self.workdir, prefix="job-"))
        for name in ("work", "tmp"):
            prepare_writable(work / name, 1000, 1000)
        volumes = {"backups": self.backups, "tool": backup_spec.TOOL_SOURCE.parent, "work": work / "work",
                   "tmp": work / "tmp", "data": self.workdir / "volumes" / "data"}
        images = {subject.langflow_image: [venv / "bin", venv, interpreter_home(venv)]}
        if engine == "postgresql":
            images["postgres"] = [server_binaries()]
        secrets = {f"{DATABASE_URL_SECRET['name']}/{DATABASE_URL_SECRET['key']}": self.database_url or ""}
        return run_pod(pod, images, volumes, secrets, env)

    def _revision(self, engine: str) -> Optional[str]:
        if engine == "sqlite":
            from components.backups.langflow_backup import sqlite_revision
            return sqlite_revision(self.workdir / "volumes" / "data" / "langflow.db")
        return self._psql("select version_num from alembic_version").strip() or None

    def _fingerprint(self, engine: str) -> str:
        if engine == "sqlite":
            return hashlib.sha256((self.workdir / "volumes" / "data" / "langflow.db").read_bytes()).hexdigest()
        return self._psql("select string_agg(table_name || ':' || column_name, ',' order by table_name, column_name) "
                          "from information_schema.columns where table_schema = current_schema()")

    def _empty(self, engine: str) -> None:
        if engine == "sqlite":
            for path in (self.workdir / "volumes" / "data").glob("langflow.db*"):
                path.unlink()
        else:
            self._psql("drop owned by current_user cascade")

    def _psql(self, sql: str) -> str:
        done = subprocess.run([str(server_binaries() / "psql"), "--no-psqlrc", "-At", "-d", self.database_url,
                               "-c", sql], capture_output=True, text=True, check=True)
        return done.stdout


def _said(output: str, start: str) -> str:
    """The line of a Job's output that starts with `start` (after its container's tag)."""
    return next((line.split("] ", 1)[-1] for line in output.splitlines() if line.split("] ", 1)[-1].startswith(start)), "")
