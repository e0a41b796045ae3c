"""Run a program the way the pod runs it: a read-only root, the pod's mounts, its user.

The pod's container sees a read-only root filesystem, its volumes at their
mount paths (writable or not), runs as UID 1000 and GID 0 with fsGroup 1000.
Here a fresh mount namespace (`unshare --mount`, Linux) reproduces that:

* a tmpfs becomes the new root; every top-level folder of the host is bound
  into it read-only (every sub-mount too), so a write anywhere else fails
  with "Read-only file system" as it would in the pod;
* `/root` is an empty tmpfs: only the folders the program needs (the Langflow
  virtualenv and its Python) are bound back into it, read-only;
* each mount of the pod is a host folder bound at the pod's path, writable
  only where the pod's is;
* the process runs as the pod's user, with the fsGroup as its group.

The network is shared: the process listens on 127.0.0.1 and the caller
reaches it there. Nothing is left behind: the namespace dies with the process.

Run as root for full fidelity. Without root, a user namespace stands in (the
process then keeps the caller's own user: the ownership checks are weaker).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

PR_SET_PDEATHSIG = 1
# Kept out of the new root: the kernel's own file systems are mounted afresh or bound whole.
_SKIPPED = {"proc", "dev", "sys", "tmp", "root", "app"}


@dataclass
class Mount:
    path: str  # where the pod sees it
    source: str  # the host folder standing in for the volume
    writable: bool


@dataclass
class Sandbox:
    mounts: list[Mount]
    uid: int
    gid: int
    groups: list[int]
    working_dir: str
    # Host folders the program needs (its virtualenv and interpreter), bound at the same path, read-only.
    visible: list[str] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        """The argv that runs `argv` inside the sandbox (environment: pass it to Popen)."""
        spec = json.dumps({**asdict(self), "argv": argv})
        namespace = ["unshare", "--mount", "--fork"] if os.geteuid() == 0 else \
            ["unshare", "--user", "--map-root-user", "--mount", "--fork"]
        return [*namespace, sys.executable, "-m", "verify.sandbox", spec]


def prepare_writable(folder: Path, uid: int, fs_group: int) -> None:
    """A volume as Kubernetes hands it over with fsGroup: group-owned, group-writable, setgid."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, uid, fs_group)
    folder.chmod(0o2775)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True)


def _submounts(root: str) -> list[str]:
    """Mount points at or below `root` in this namespace, outermost first."""
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root.rstrip("/") + "/"):
                points.append(point)
    return sorted(points, key=len)


def _bind_read_only(source: str, target: str) -> None:
    _run("mount", "--rbind", source, target)
    for point in _submounts(target):
        subprocess.run(["mount", "-o", "remount,bind,ro", point], check=False)


def _mirror(source: str, target: str) -> None:
    """One host entry in the sandbox's root: a link as it is, a folder or a file bound read-only."""
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    elif os.path.isdir(source):
        os.mkdir(target)
        _bind_read_only(source, target)
    elif os.path.isfile(source):
        open(target, "w").close()
        _bind_read_only(source, target)


def _shadow(root: str, folder: str) -> None:
    """A tmpfs over the read-only bind of a host folder, holding the same entries (each bound read-only), so
    that a mount point the image lacks (e.g. /etc/langflow/...) can be made in it, as a container runtime
    makes it in the container's own layer."""
    host, entries = folder[len(root):], os.listdir(folder)
    _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", folder)
    for entry in entries:
        _mirror(os.path.join(host, entry), os.path.join(folder, entry))


def _mount_point(root: str, path: str, shadows: list[str]) -> str:
    inside = root + path
    try:
        os.makedirs(inside, exist_ok=True)
    except OSError:  # below a read-only host folder
        existing = os.path.dirname(inside)
        while not os.path.isdir(existing):
            existing = os.path.dirname(existing)
        _shadow(root, existing)
        shadows.append(existing)
        os.makedirs(inside, exist_ok=True)
    return inside


def _enter(spec: dict) -> None:
    """Inside the new mount namespace: build the root, then become the pod's process."""
    _run("mount", "--make-rprivate", "/")
    root = tempfile.mkdtemp(prefix="langflow-verify-root-")
    _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", root)
    for entry in sorted(os.listdir("/")):
        host = f"/{entry}"
        # The host's folders and links, not its loose files (a container's root has none of them).
        if entry not in _SKIPPED and (os.path.islink(host) or os.path.isdir(host)):
            _mirror(host, os.path.join(root, entry))
    for name in ("proc", "dev", "sys", "tmp", "root"):
        os.makedirs(os.path.join(root, name), exist_ok=True)
    _run("mount", "-t", "proc", "proc", os.path.join(root, "proc"))
    _run("mount", "--rbind", "/dev", os.path.join(root, "dev"))
    _bind_read_only("/sys", os.path.join(root, "sys"))
    _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", os.path.join(root, "root"))
    for folder in spec["visible"]:
        if folder.startswith("/root/") or folder == "/root":
            inside = root + folder
            os.makedirs(inside, exist_ok=True)
            _bind_read_only(folder, inside)
    shadows: list[str] = []
    for mount in sorted(spec["mounts"], key=lambda m: len(m["path"])):
        inside = _mount_point(root, mount["path"], shadows)
        _run("mount", "--bind", mount["source"], inside)
        if not mount["writable"]:
            _run("mount", "-o", "remount,bind,ro", inside)
    for folder in [root, *shadows]:  # the root file system is read-only, as the pod's
        _run("mount", "-o", "remount,bind,ro" if folder == root else "remount,ro", folder)
    os.chroot(root)
    os.chdir(spec["working_dir"] if os.path.isdir(spec["working_dir"]) else "/")
    if os.geteuid() == 0 and spec["uid"] != 0:
        try:
            os.setgroups(spec["groups"])
            os.setgid(spec["gid"])
            os.setuid(spec["uid"])
        except PermissionError:
            pass  # a user namespace maps only the caller: keep its user
    # Changing user clears the parent-death signal `unshare --kill-child` set: set it again, so that this
    # process (PID 1 of its namespace, taking every other with it) dies with whoever started it.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.execvpe(spec["argv"][0], spec["argv"], dict(os.environ))


def cleanup_tree(folder: Optional[Path]) -> None:
    """Remove what a sandboxed run left in its host folders (owned by the pod's user)."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    _enter(json.loads(sys.argv[1]))
