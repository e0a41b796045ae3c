"""Run a LocalCluster detached from the shell (`up`), stop it (`down`).

`up` starts ``python -m localcluster _supervise`` in its own session. That
supervisor process owns the cluster: it starts the components (which die with
it through PR_SET_PDEATHSIG), runs the add-on controller threads, writes
``DIR/localcluster.pid`` and ``DIR/localcluster.json``, and on SIGTERM stops
everything and exits. `down` signals the supervisor, waits for it, and then
makes sure no process it recorded is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import forward, node as real_node
from .cluster import BINARIES, ClusterError, LocalCluster, tail

PIDFILE = "localcluster.pid"
STATEFILE = "localcluster.json"
SUPERVISOR_LOG = "supervisor.log"


# -- helpers -------------------------------------------------------------------
def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _is_supervisor(pid: int, workdir: Path) -> bool:
    cmd = _cmdline(pid)
    return "_supervise" in cmd and str(workdir) in cmd


def _belongs(pid: int, workdir: Path) -> bool:
    """A process we started for this workdir: one of our binaries whose
    command line mentions the workdir."""
    cmd = _cmdline(pid)
    return bool(cmd) and Path(cmd[0]).name in BINARIES + real_node.NODE_BINARIES \
        and any(str(workdir) in a for a in cmd)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _read_pid(workdir: Path) -> int | None:
    try:
        return int((workdir / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return None


def running_supervisor(workdir: Path) -> int | None:
    pid = _read_pid(workdir)
    if pid and alive(pid) and _is_supervisor(pid, workdir):
        return pid
    return None


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


def _stray_processes(workdir: Path) -> list[int]:
    """Processes of ours for this workdir that are still around."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            pid = int(entry.name)
            if alive(pid) and _belongs(pid, workdir):
                found.append(pid)
    return found


# -- supervisor (runs detached) -------------------------------------------------
def node_choice(wanted: str, bin_dir: Path) -> tuple[bool, str]:
    """(real node or not, a line saying why not) for --node auto|real|simulated."""
    if wanted == "simulated":
        return False, ""
    reason = real_node.unavailable(bin_dir)
    if reason and wanted == "real":
        raise ClusterError(f"no real node: {reason}")
    if reason:
        return False, f"localcluster: no real node ({reason}); pods are simulated by kwok, no container runs"
    return True, ""


def supervise(workdir: Path, bin_dir: Path, timeout: float, node: str = "simulated") -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    state_path = workdir / STATEFILE
    (workdir / PIDFILE).write_text(f"{os.getpid()}\n")
    stop = threading.Event()
    starting = True

    def on_signal(signum, _frame):
        stop.set()
        if starting:  # abort the start-up; the finally below cleans up
            raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    _write_json(state_path, {"status": "starting", "pid": os.getpid()})
    code = 0
    cluster = forwards = None
    try:
        try:
            real, _ = node_choice(node, bin_dir)
            # With a real node there are no simulated ones: every pod runs for real.
            cluster = LocalCluster(bin_dir, workdir, startup_timeout=timeout, real_node=real,
                                   nodes=0 if real else 3)
            cluster.start()
        except (ClusterError, real_node.NodeError) as exc:
            _write_json(state_path, {"status": "failed", "pid": os.getpid(), "error": str(exc)})
            print(f"start failed: {exc}", file=sys.stderr, flush=True)
            return 1
        starting = False
        state = {
            "status": "running",
            "pid": os.getpid(),
            "server": cluster.server,
            "kubeconfig": str(cluster.kubeconfig),
            "ports": cluster.ports,
            "components": cluster.pids(),
            "startup_seconds": round(cluster.startup_seconds or 0, 1),
            "kube_version": cluster.kube_version,
            "node": "real" if cluster.node else "simulated",
        }
        _write_json(state_path, state)
        forwards = forward.Forwards(workdir, cluster)
        print(f"cluster running: {cluster.server} ({state['startup_seconds']}s)",
              file=sys.stderr, flush=True)
        reported: set[str] = set()
        while not stop.wait(1.0):
            forwards.reconcile()
            for name, comp in cluster.components.items():
                code_ = comp.proc.poll() if comp.proc else None
                if code_ is not None and name not in reported:
                    reported.add(name)
                    print(f"{name} exited with code {code_}:\n{tail(comp.log_path, 20)}",
                          file=sys.stderr, flush=True)
                    state["status"] = "degraded"
                    state.setdefault("exited", {})[name] = code_
                    _write_json(state_path, state)
    except BaseException as exc:
        if not isinstance(exc, SystemExit):
            _write_json(state_path, {"status": "failed", "pid": os.getpid(),
                                     "error": f"{type(exc).__name__}: {exc}"})
            code = 1
        else:
            code = 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if forwards is not None:
            forwards.stop()
        if cluster is not None:
            cluster.stop()
        current = _read_json(state_path)
        if current.get("status") != "failed":
            _write_json(state_path, {"status": "stopped"})
        try:
            (workdir / PIDFILE).unlink()
        except OSError:
            pass
        print("cluster stopped", file=sys.stderr, flush=True)
    return code


# -- commands -------------------------------------------------------------------
def up(workdir: Path, bin_dir: Path, timeout: float = 120.0, node: str = "simulated") -> int:
    workdir = workdir.absolute()
    bin_dir = bin_dir.absolute()
    pid = running_supervisor(workdir)
    if pid:
        state = _read_json(workdir / STATEFILE)
        print(f"localcluster: already running in {workdir} (pid {pid}) at "
              f"{state.get('server', '?')}", file=sys.stderr)
        print(workdir / "kubeconfig")
        return 0
    try:
        _, notice = node_choice(node, bin_dir)
    except ClusterError as exc:
        print(f"localcluster: {exc}", file=sys.stderr)
        return 1
    if notice:
        print(notice, file=sys.stderr)
    strays = _stray_processes(workdir)
    if strays:
        print(f"localcluster: stopping leftover processes {strays}", file=sys.stderr)
        _kill(strays)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    for name in (PIDFILE, STATEFILE):
        (workdir / name).unlink(missing_ok=True)

    pkg_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log_path = workdir / "logs" / SUPERVISOR_LOG
    t0 = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localcluster", "_supervise", "--dir", str(workdir),
             "--bin", str(bin_dir), "--timeout", str(timeout), "--node", node],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir, env=env,
            close_fds=True, start_new_session=True)
    # A real node may first wait its turn for the host (localcluster/node.py, LOCALCLUSTER_NODE_LOCK_WAIT).
    deadline = t0 + timeout + 30 + (float(os.environ.get("LOCALCLUSTER_NODE_LOCK_WAIT") or 0) if node != "simulated" else 0)
    while True:
        state = _read_json(workdir / STATEFILE)
        status = state.get("status")
        if status == "running":
            print(f"localcluster: up in {time.monotonic() - t0:.1f}s: {state['server']}, {state['node']} "
                  f"node (supervisor pid {proc.pid}); kubeconfig: {state['kubeconfig']}",
                  file=sys.stderr)
            print(state["kubeconfig"])
            return 0
        if status == "failed" or proc.poll() is not None:
            proc.wait(30) if proc.poll() is None else None
            err = state.get("error") or (
                "stopped while starting" if status == "stopped" else tail(log_path))
            print(f"localcluster: failed to start:\n{err}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print("localcluster: timed out waiting for the cluster; stopping it",
                  file=sys.stderr)
            down(workdir, quiet=True)
            print(tail(log_path), file=sys.stderr)
            return 1
        time.sleep(0.2)


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for p in pids:
        try:
            os.killpg(p, sig)  # each component leads its own process group
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass
    _wait_gone(pids, 10)


def down(workdir: Path, timeout: float = 60.0, quiet: bool = False) -> int:
    workdir = workdir.absolute()
    state = _read_json(workdir / STATEFILE)
    pid = running_supervisor(workdir)
    if pid:
        os.kill(pid, signal.SIGTERM)
        if _wait_gone([pid], timeout):
            print(f"localcluster: supervisor {pid} did not stop in {timeout}s; killing",
                  file=sys.stderr)
            os.kill(pid, signal.SIGKILL)
            _wait_gone([pid], 10)
    # Whatever is left (supervisor killed hard, or it crashed): recorded
    # component pids first, then anything of ours mentioning the workdir.
    recorded = [p for p in (state.get("components") or {}).values()
                if alive(p) and _belongs(p, workdir)]
    leftovers = sorted(set(recorded) | set(_stray_processes(workdir)))
    if leftovers:
        print(f"localcluster: killing leftover processes {leftovers}", file=sys.stderr)
        _kill(leftovers)
    still = _stray_processes(workdir)
    (workdir / PIDFILE).unlink(missing_ok=True)
    if (workdir / STATEFILE).exists() and _read_json(workdir / STATEFILE).get("status") != "failed":
        _write_json(workdir / STATEFILE, {"status": "stopped"})
    if still:
        print(f"localcluster: processes still running: {still}", file=sys.stderr)
        return 1
    if not quiet:
        print("localcluster: stopped" if pid or leftovers else "localcluster: not running",
              file=sys.stderr)
    return 0


def status(workdir: Path) -> int:
    workdir = workdir.absolute()
    state = _read_json(workdir / STATEFILE)
    pid = running_supervisor(workdir)
    if not pid:
        print(json.dumps({"status": "stopped" if state.get("status") != "failed" else "failed",
                          **({"error": state["error"]} if state.get("error") else {})}, indent=2))
        return 3
    comps = {name: {"pid": p, "alive": alive(p)}
             for name, p in (state.get("components") or {}).items()}
    out = {**state, "components": comps}
    print(json.dumps(out, indent=2))
    return 0 if state.get("status") == "running" and all(c["alive"] for c in comps.values()) else 1
