"""Langflow releases from PyPI, each from a hash-locked file, in a cached virtualenv.

`verify/locks/langflow-<version>.txt` pins the whole dependency set as it
stood the day after the release (`uv pip compile --exclude-newer`), so the
process `make verify` starts has what the release's image was built with. A
virtualenv per lock lives outside the repo, under the toolchain cache, keyed
by the version and the lock's hash; a warm run reuses it at once.

    python -m verify.install 1.13.0          # the virtualenv (built once), its path printed
    python -m verify.install --lock 1.14.0   # write verify/locks/langflow-1.14.0.txt
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

LOCKS = Path(__file__).resolve().parent / "locks"
PYTHON_VERSION = "3.11"


class InstallError(Exception):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("LANGFLOW_TOOLCHAIN_CACHE", Path.home() / ".cache" / "langflow-pulumi-toolchain"))


def lock_file(version: str) -> Path:
    return LOCKS / f"langflow-{version}.txt"


def locked_versions() -> list[str]:
    return sorted((p.name.removeprefix("langflow-").removesuffix(".txt") for p in LOCKS.glob("langflow-*.txt")),
                  key=lambda v: tuple(int(x) for x in v.split(".")))


def _uv() -> str:
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.exists() else shutil.which("uv") or "uv"


def _uv_env() -> dict[str, str]:
    # uv's download cache beside the virtualenvs: one place to keep warm, or to delete.
    return {**os.environ, "UV_CACHE_DIR": str(cache_dir() / "uv"), "UV_NO_PROGRESS": "1"}


def base_python() -> Path:
    """The interpreter the virtualenvs are made from: this Python's own installation."""
    return Path(sys.base_prefix) / "bin" / f"python{PYTHON_VERSION}"


def venv_path(version: str) -> Path:
    lock = lock_file(version)
    if not lock.exists():
        raise InstallError(f"no lock for Langflow {version} (verified: {', '.join(locked_versions())}); "
                           f"create it with `make langflow-lock VERSION={version}`")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:12]
    return cache_dir() / f"langflow-{version}-{digest}"


def ensure_langflow(version: str, log=print) -> Path:
    """The virtualenv of Langflow `version`, installed from its lock unless it already is.

    One process at a time per virtualenv (the test streams run side by side): a second caller waits
    for the first to finish, then finds it installed, instead of throwing away a half-built one that
    is still being written."""
    target = venv_path(version)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_installed(version, target, log)


def _ensure_installed(version: str, target: Path, log) -> Path:
    marker = target / ".installed.json"
    if marker.exists():
        record = json.loads(marker.read_text())
        if not record.get("bytecode"):  # installed before bytecode was compiled at install
            _compile_bytecode(target, log)
            marker.write_text(json.dumps({**record, "bytecode": True}))
        return target
    # A half-built one (an interrupted install) is thrown away: scripts hold absolute paths, so no staging.
    shutil.rmtree(target, ignore_errors=True)
    log(f"installing Langflow {version} from {lock_file(version).relative_to(LOCKS.parent.parent)} into {target}")
    started = time.monotonic()
    steps = [
        [_uv(), "venv", "--quiet", "--python", str(base_python()), str(target)],
        # Bytecode compiled once, as the image ships it: in the read-only sandbox (and the pod) Python
        # cannot cache it, and would compile every module on every start.
        [_uv(), "pip", "sync", "--quiet", "--require-hashes", "--compile-bytecode", "--python",
         str(target / "bin" / "python"), str(lock_file(version))],
    ]
    for step in steps:
        done = subprocess.run(step, env=_uv_env(), capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            raise InstallError(f"`{' '.join(step)}` failed:\n{done.stderr[-3000:]}")
    seconds = time.monotonic() - started
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file() and not p.is_symlink())
    marker.write_text(json.dumps({"version": version, "seconds": round(seconds, 1), "bytes": size, "bytecode": True}))
    log(f"installed Langflow {version} in {seconds:.0f} s ({size / 2**30:.1f} GiB)")
    return target


def _compile_bytecode(target: Path, log) -> None:
    log(f"compiling Langflow's bytecode in {target} (once)")
    # Exit status ignored: a few vendored files are for other Python versions and never imported.
    subprocess.run([str(target / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
                    *map(str, target.glob("lib/python*/site-packages"))], capture_output=True)


def release_day(version: str) -> dt.date:
    try:
        with urllib.request.urlopen("https://pypi.org/pypi/langflow/json", timeout=60) as answer:
            files = json.load(answer)["releases"].get(version) or []
    except (OSError, ValueError) as error:
        raise InstallError(f"could not read langflow's releases from PyPI: {error}") from None
    if not files:
        raise InstallError(f"PyPI has no release langflow {version}")
    return min(dt.datetime.fromisoformat(f["upload_time"]).date() for f in files)


def write_lock(version: str) -> Path:
    """Pin langflow[postgresql]==version and everything below it as of the day after its release."""
    cutoff = release_day(version) + dt.timedelta(days=1)
    LOCKS.mkdir(exist_ok=True)
    target = lock_file(version)
    requirement = LOCKS / f".langflow-{version}.in"
    # The `postgresql` extra, as the official image installs it: the PostgreSQL drivers.
    requirement.write_text(f"langflow[postgresql]=={version}\n")
    try:
        subprocess.run([_uv(), "pip", "compile", "--quiet", "--python-version", PYTHON_VERSION,
                        "--exclude-newer", cutoff.isoformat(), "--generate-hashes", "--no-header",
                        str(requirement), "-o", str(target)], env=_uv_env(), check=True)
    finally:
        requirement.unlink()
    body = target.read_text()
    target.write_text(f"# langflow[postgresql]=={version} and its dependencies as PyPI served them on {cutoff} (the day after\n"
                      f"# the release), hash-locked. Made by `make langflow-lock VERSION={version}`.\n" + body)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m verify.install", description=__doc__.split("\n\n")[0])
    parser.add_argument("version")
    parser.add_argument("--lock", action="store_true", help="write the lock file instead of installing")
    args = parser.parse_args()
    try:
        print(write_lock(args.version) if args.lock else ensure_langflow(args.version, log=lambda m: print(m, file=sys.stderr)))
    except InstallError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
