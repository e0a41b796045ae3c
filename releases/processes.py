"""The process table, read from /proc: which processes run, since when, and which carry a marker.

A run of `python -m releases` marks its environment (RUN_MARKER); the Pulumi CLI, its language
host and its plugins inherit it. Plugins run in process groups of their own, so a run killed
with its process group leaves them behind; the next run finds them by the marker of a run whose
leader is gone, and ends them by their process ids (never by a name match).
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

RUN_MARKER = "LANGFLOW_RELEASES_RUN"
_PROC = Path("/proc")


def _entries() -> list[Path]:
    """/proc's entries; none where there is no /proc (not Linux): then nothing is found, nothing ended."""
    return list(_PROC.iterdir()) if _PROC.is_dir() else []


def _stat_fields(pid: int) -> Optional[list[str]]:
    """/proc/<pid>/stat from the state field on (the command name may hold spaces); None if gone."""
    try:
        return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def running(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def started_at(pid: int) -> Optional[datetime]:
    """When the process started (UTC), from its start time in clock ticks since boot."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    try:
        boot = next(int(line.split()[1]) for line in (_PROC / "stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    seconds = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(seconds, timezone.utc)


def run_id(pid: int) -> str:
    """A marker value naming one process for good: its pid and its start time (pids are reused)."""
    started = started_at(pid)
    return f"{pid}@{int(started.timestamp() * 100) if started else 0}"


def run_alive(value: str) -> bool:
    pid, _, _ = value.partition("@")
    return pid.isdigit() and running(int(pid)) and run_id(int(pid)) == value


def marked(name: str) -> dict[int, str]:
    """Live processes whose environment has the variable `name`: pid -> its value.

    Readable for processes of the same user, or all of them as root; others are skipped."""
    found: dict[int, str] = {}
    prefix = f"{name}=".encode()
    for entry in _entries():
        if not entry.name.isdigit():
            continue
        try:
            values = [v for v in (entry / "environ").read_bytes().split(b"\0") if v.startswith(prefix)]
        except OSError:
            continue
        if values and running(int(entry.name)):
            found[int(entry.name)] = values[0][len(prefix):].decode(errors="replace")
    return found


def end(pids: list[int], grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL for what still runs after `grace` seconds; the pids that were running."""
    ended = [pid for pid in pids if running(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in ended:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(running(pid) for pid in ended):
            time.sleep(0.1)
    return ended


def children(parent: int, name: str) -> list[int]:
    """Running processes whose parent is `parent` and whose command name is `name`."""
    found = []
    for entry in _entries():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            fields = _stat_fields(int(entry.name))
            if comm == name and fields is not None and fields[0] not in ("Z", "X") and int(fields[1]) == parent:
                found.append(int(entry.name))
    return found
