"""A scratch PostgreSQL for `make verify`, set up the way the program sets up Langflow's database.

For a stack on PostgreSQL, `make verify` needs a server Langflow may migrate.
This starts one from the host's PostgreSQL server binaries (Debian's
`postgresql` package) on 127.0.0.1, then runs the program's own bootstrap
(the SQL and the psql arguments of the bootstrap Job, with the variables
expanded as the kubelet expands them) to create Langflow's role and database
with a password full of the characters a URL must encode, and hands back the
URL the program's own function builds. The server stops, and its folder goes,
when the check ends, whatever happens.
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from components.database import spec
from settings.database import PostgresConfig

# The password of Langflow's role: random, with every character that breaks an unencoded URL.
HARD_CHARACTERS = "@:/#%?& '\""
PR_SET_PDEATHSIG = 1


class PostgresUnavailable(Exception):
    pass


def server_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresUnavailable("a PostgreSQL stack needs a database: install the PostgreSQL server "
                                  "(Debian: apt-get install postgresql) or pass --database-url")
    return Path(found[-1]).parent


def expand(arguments: list[str], env: dict[str, str]) -> list[str]:
    """A container's command or args as the kubelet hands them over (no shell): `$(VAR)` of a defined variable
    becomes its value, `$$` becomes `$` (the real node showed the second: the restore Job's SQL broke on it)."""
    def one(match: re.Match) -> str:
        return "$" if match.group(1) == "$" else env.get(match.group(2), match.group(0))
    return [re.sub(r"\$(\$|\(([A-Za-z_][A-Za-z0-9_]*)\))", one, a) for a in arguments]


class ScratchPostgres:
    """`bootstrap=False`: only the server and its superuser (`postgres`, `superuser_password`)."""

    def __init__(self, config: PostgresConfig, log=print, bootstrap: bool = True):
        self.config, self.log, self.bootstrap = config, log, bootstrap
        self.folder = Path(tempfile.mkdtemp(prefix="langflow-verify-postgres-"))
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.superuser_password = secrets.token_urlsafe(24)
        self.password = secrets.token_urlsafe(12) + HARD_CHARACTERS + secrets.token_urlsafe(6)

    def _as_owner(self):
        owner = _owner()

        def setup() -> None:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if owner is not None:
                os.setgid(owner.pw_gid)
                os.setuid(owner.pw_uid)
        return setup

    def __enter__(self) -> "ScratchPostgres":
        try:
            self._start()
            if self.bootstrap:
                self._bootstrap()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _start(self) -> None:
        binaries = server_binaries()
        owner = _owner()
        data = self.folder / "data"
        password_file = self.folder / "superuser-password"
        password_file.write_text(self.superuser_password)
        if owner is not None:
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        done = subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", spec.SUPERUSER, "-E", "UTF8",
                               "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-sync"],
                              capture_output=True, text=True, preexec_fn=self._as_owner())
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr[-1500:]}")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        log = (self.folder / "postgres.log").open("w")
        self.proc = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.folder), "-c", "fsync=off"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._as_owner(), start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise PostgresUnavailable(f"PostgreSQL did not start: {(self.folder / 'postgres.log').read_text()[-1500:]}")
            time.sleep(0.3)
        version = subprocess.run([str(binaries / "postgres"), "--version"], capture_output=True, text=True).stdout.strip()
        self.log(f"scratch database: {version} on 127.0.0.1:{self.port}")

    def _bootstrap(self) -> None:
        """The bootstrap Job's psql command and SQL, against this server."""
        job = spec.bootstrap_job_manifest(
            "verify", "verify", self.config.model_copy(update={"mode": "in-cluster", "external": None}), None, {}, {},
            "bootstrap-sql", {"name": "credentials", "key": spec.LANGFLOW_PASSWORD_KEY}, "digest")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        env.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGPASSWORD=self.superuser_password,
                   DB_PASSWORD=self.password, PATH=os.environ.get("PATH", "/usr/bin:/bin"))
        sql = self.folder / "bootstrap.sql"
        sql.write_text(spec.BOOTSTRAP_SQL)
        argv = [container["command"][0], *expand(container["args"], env)]
        argv = [str(sql) if a == "/bootstrap/bootstrap.sql" else a for a in argv]
        for attempt in range(2):  # the second run proves it idempotent
            done = subprocess.run(argv, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise PostgresUnavailable(f"the bootstrap SQL failed (run {attempt + 1}): {done.stderr[-1500:]}")

    @property
    def url(self) -> str:
        return spec.database_url(self.config.user, self.password, "127.0.0.1", self.port, self.config.database, "disable")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _owner() -> Optional[pwd.struct_passwd]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")
