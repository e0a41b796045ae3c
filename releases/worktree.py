"""One release command at a time may rewrite a project's work tree.

A rollback writes the target release's stack file and flows into the work tree, previews, and puts the
operator's files back if it does not go through; an atomic release does the same when it rolls back.
Pulumi's own lock guards the stack's state, but only once an update starts, and a preview takes none:
without this lock a rollback started beside another command could rewrite files the other one reads or
saves. Commands that rewrite files take it exclusively; those that only read them share it. It is an
flock, so a command that dies releases it with its process.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from releases.history import ReleaseError

LOCK_FILE = ".releases.lock"  # in .gitignore


@contextmanager
def work_tree_lock(project_dir: Path, command: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the project's work tree for `command`; ReleaseError at once, changing nothing, if another holds it."""
    descriptor = os.open(project_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
            raise ReleaseError(
                f"another release command runs in this project ({holder or 'a make up, restore or destroy'}), and "
                f"`{command}` {'rewrites' if exclusive else 'reads'} the stack file and the flows it may be "
                "rewriting. Wait for it to end, then run this again. Nothing was changed.") from None
        if exclusive:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"`{command}`, pid {os.getpid()}".encode(), 0)
        try:
            yield
        finally:
            if exclusive:
                os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)
