"""One real Langflow process, started as the pod would start it, and always stopped.

The process runs in the sandbox (verify/sandbox.py) inside a PID namespace of
its own: `langflow run` is PID 1 there, as in a container, and when it or
this program dies the kernel ends every process in the namespace. It listens
on 127.0.0.1 only (the rendered LANGFLOW_HOST/PORT and the metrics port are
replaced, and loopback/sitecustomize.py keeps the metrics endpoint on
127.0.0.1: the deviations from the pod).
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

from releases.processes import marked
from verify.render import Container
from verify.sandbox import Mount, Sandbox, prepare_writable

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = Path(__file__).resolve().parent / "loopback"
PR_SET_PDEATHSIG = 1
# How long `langflow run` must be alone with a dead child before the start counts as failed.
DEAD_SERVER_SECONDS = 3
# What Langflow prints when a write hits the read-only root or a folder it may not write.
WRITE_ERRORS = ("Read-only file system", "Permission denied", "Errno 30", "Errno 13")


class StartFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# Marks every process of one `make verify` run, so that the run (and its tests) can find its own.
RUN_MARKER = "MAKE_VERIFY_RUN"


def processes_of_run(run_id: str) -> list[int]:
    """Live processes started by the `make verify` run `run_id` (readable by root, or by their owner)."""
    return [pid for pid, value in marked(RUN_MARKER).items() if value == run_id]


def interpreter_home(venv: Path) -> Path:
    """The installation of the Python a virtualenv was made from: the sandbox must see it too."""
    return Path((venv / "pyvenv.cfg").read_text().split("home = ", 1)[1].splitlines()[0]).parent


class LangflowProcess:
    def __init__(self, venv: Path, container: Container, workdir: Path, run_id: str = ""):
        self.venv, self.container, self.workdir, self.run_id = venv, container, workdir, run_id
        self.port, self.metrics_port = free_port(), free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self.log_path = workdir / "langflow.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _host_folder(self, volume) -> Path:
        # The data volume outlives a restart; an emptyDir is new with every pod.
        folder = self.workdir / "volumes" / (volume.name if volume.persistent else f"{volume.name}-{self.starts}")
        if volume.files is not None:
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in volume.files.items():
                (folder / name).write_text(text)
        elif volume.writable:
            prepare_writable(folder, self.container.uid, self.container.fs_group)
        else:
            folder.mkdir(parents=True, exist_ok=True)
        if volume.sub_path:
            folder = folder / volume.sub_path
            prepare_writable(folder, self.container.uid, self.container.fs_group)
        return folder

    def environment(self) -> dict[str, str]:
        env = dict(self.container.env)
        # Loopback only; the container listens on 0.0.0.0:7860 behind its pod IP.
        env.update(LANGFLOW_HOST="127.0.0.1", LANGFLOW_PORT=str(self.port))
        if "LANGFLOW_PROMETHEUS_PORT" in env:
            # The metrics endpoint too (loopback/sitecustomize.py keeps it on 127.0.0.1).
            env["LANGFLOW_PROMETHEUS_PORT"] = str(self.metrics_port)
        env["PYTHONPATH"] = str(LOOPBACK)
        env["PATH"] = f"{self.venv}/bin:/usr/local/bin:/usr/bin:/bin"
        env[RUN_MARKER] = self.run_id
        return env

    def start(self) -> None:
        self.starts += 1
        mounts = [Mount(v.path, str(self._host_folder(v)), v.writable) for v in self.container.volumes]
        python_home = interpreter_home(self.venv)
        sandbox = Sandbox(mounts=mounts, uid=self.container.uid, gid=self.container.gid,
                          groups=[self.container.fs_group], working_dir=self.container.working_dir,
                          visible=[str(self.venv), str(python_home), str(LOOPBACK)])
        # A PID namespace of its own: Langflow is PID 1, and nothing outlives it.
        argv = sandbox.command(self.container.command or [str(self.venv / "bin" / "langflow"), "run"])
        argv[1:1] = ["--pid", "--kill-child=SIGKILL"]
        log = self.log_path.open("a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        self.proc = subprocess.Popen(argv, env=self.environment(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        log.close()

    def wait_exit(self, budget: float) -> tuple[Optional[int], float]:
        """(exit status, seconds) of a run-to-completion command; status None when the budget ran out."""
        started = time.monotonic()
        try:
            return self.proc.wait(timeout=budget), time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.kill()
            return None, time.monotonic() - started

    def wait_ready(self, budget: float) -> float:
        """Seconds until /health_check answers ok; StartFailed as soon as start-up cannot succeed."""
        started = time.monotonic()
        alone_since: Optional[float] = None
        while True:
            status, _ = self.request("/health_check")
            # Measured once the answer is in: a server that has bound its port holds the request until ready.
            elapsed = time.monotonic() - started
            if status == 200:
                return elapsed
            if self.proc.poll() is not None:
                raise StartFailed(f"Langflow exited with {self.proc.returncode} during start-up\n{self.log_tail()}")
            # `langflow run` keeps polling when its server process died: that is a failed start too. A dead
            # server stays unreaped for good; a helper that just ended is reaped within moments (on a loaded
            # machine not always before the next look): only a server gone for a while counts.
            if not self.starts_failed():
                alone_since = None
            elif alone_since is None:
                alone_since = time.monotonic()
            elif time.monotonic() - alone_since >= DEAD_SERVER_SECONDS:
                raise StartFailed(f"the server process ended during start-up (langflow run would wait forever)\n"
                                  f"{self.log_tail()}")
            if elapsed > budget:
                raise StartFailed(f"not ready after {budget:.0f} s (the startup probe's budget)\n{self.log_tail()}")
            time.sleep(0.5)

    def starts_failed(self) -> bool:
        """`langflow run` (PID 1) started its server process, and now it is alone again: the server died.

        `langflow run` reaps its server only once it answered, so a server that died in start-up stays
        a zombie child; helpers it runs before the server are reaped at once and never count.
        """
        processes = self._processes()
        pid1 = [pid for pid, (ppid, _) in processes.items() if ppid == self.proc.pid][:1]
        children = [zombie for pid, (ppid, zombie) in processes.items() if pid1 and ppid == pid1[0]]
        return any(children) and all(children)

    def request(self, path: str, method: str = "GET", body: Optional[bytes] = None,
                headers: Optional[dict[str, str]] = None, timeout: float = 60) -> tuple[int, object]:
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, _decode(answer.read(), answer.headers.get("Content-Encoding"))
        except urllib.error.HTTPError as error:
            return error.code, _decode(error.read(), error.headers.get("Content-Encoding"))
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError):
            return 0, None

    def login(self, user: str, password: str) -> tuple[int, Any]:
        """POST /api/v1/login with a user's password: (status, body with `access_token`)."""
        form = urllib.parse.urlencode({"username": user, "password": password}).encode()
        return self.request("/api/v1/login", "POST", form, {"Content-Type": "application/x-www-form-urlencoded"})

    def create_api_key(self, token: str, name: str) -> tuple[int, Any]:
        """POST /api/v1/api_key/ as the user of `token`: (status, body with `api_key`)."""
        return self.request("/api/v1/api_key/", "POST", json.dumps({"name": name}).encode(),
                            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def response_headers(self, path: str, headers: dict[str, str]) -> dict[str, str]:
        """The headers of a GET's answer (lower-case names); empty when nothing answered."""
        request = urllib.request.Request(self.base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return {k.lower(): v for k, v in answer.headers.items()}
        except urllib.error.HTTPError as error:
            return {k.lower(): v for k, v in error.headers.items()}
        except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError):
            return {}

    @staticmethod
    def _processes() -> dict[int, tuple[int, bool]]:
        """Every process: PID -> (parent PID, whether it exited and nobody reaped it yet)."""
        processes: dict[int, tuple[int, bool]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                except (OSError, IndexError, ValueError):
                    continue
                processes[int(entry.name)] = (int(ppid), state == "Z")
        return processes

    def _descendants(self) -> list[int]:
        """Running processes below the sandbox; `langflow run` (PID 1 of the namespace) comes first."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for pid, (ppid, zombie) in self._processes().items():
            if not zombie:  # an exited process nobody reaped is gone, not running
                children.setdefault(ppid, []).append(pid)
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                found.append(child)
                todo.append(child)
        return found

    def memory_bytes(self) -> int:
        """Proportional set size of every Langflow process: close to what the pod's cgroup is charged."""
        total = 0
        for pid in self._descendants():
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def stop(self, grace: float = 60) -> Optional[float]:
        """SIGTERM as the kubelet sends it; seconds until it ended, None if it had to be killed."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        started = time.monotonic()
        pid1 = self._descendants()[:1]
        for pid in pid1:  # the kubelet signals the container's PID 1
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=grace)
            return time.monotonic() - started
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """SIGKILL, and return only once every process of the sandbox is gone.

        Killed first is the namespace's PID 1: the kernel ends it only after every other process in
        the namespace has ended, and `unshare` only after it, so the wait below covers them all.
        Killing `unshare` first would return while a large Langflow worker is still being torn down.
        """
        if self.proc is None or self.proc.poll() is not None:
            return
        pid1 = self._descendants()[:1]
        try:
            if pid1:
                os.kill(pid1[0], signal.SIGKILL)
                self.proc.wait(timeout=30)
                return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:  # no PID 1 yet, or it did not end: the whole process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join("    " + line for line in self.log_text().splitlines()[-lines:])

    def records(self) -> tuple[list[dict], list[str]]:
        """The JSON log records as a line-by-line collector reads them, and the lines that are not JSON."""
        records, other = [], []
        for line in self.log_text().split("\n"):
            if not line.strip() or line.startswith("====="):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                other.append(line)
                continue
            (records if isinstance(record, dict) else other).append(record if isinstance(record, dict) else line)
        return records, other

    def write_errors(self) -> list[str]:
        """Failed writes Langflow reports; debug records are the ones it expects on a read-only root."""
        records, other = self.records()
        found = [json.dumps(r)[:300] for r in records
                 if r.get("level") != "debug" and any(e in json.dumps(r) for e in WRITE_ERRORS)]
        return found + [line.strip()[:300] for line in other if any(e in line for e in WRITE_ERRORS)]

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir / "volumes", ignore_errors=True)


def _decode(raw: bytes, encoding: Optional[str] = None) -> object:
    # Langflow compresses large answers whether or not the client asked for it.
    if encoding == "gzip" or raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
