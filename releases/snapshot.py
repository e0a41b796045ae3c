"""The stack file and the flows of a release, kept in git so that a rollback can restore them.

A release made from committed files records that commit. One made from uncommitted files
records a snapshot commit (HEAD plus those files, written through a temporary index: the
work tree, the index and the branch are left alone), kept reachable under
`refs/langflow/snapshots/`. Push those refs to share them: `git push origin 'refs/langflow/*'`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from releases.history import ReleaseError

SNAPSHOT_REFS = "refs/langflow/snapshots"
# A snapshot needs an author; the operator's own identity when git has one.
_IDENTITY = {"GIT_AUTHOR_NAME": "langflow releases", "GIT_AUTHOR_EMAIL": "releases@langflow.invalid",
             "GIT_COMMITTER_NAME": "langflow releases", "GIT_COMMITTER_EMAIL": "releases@langflow.invalid"}


class Repository:
    """The git repository around the project; paths are given relative to the project root."""

    def __init__(self, project_dir: Path, top: Path):
        self.project_dir, self.top = project_dir, top
        self.prefix = self.project_dir.relative_to(self.top).as_posix()

    @classmethod
    def find(cls, project_dir: Path) -> Optional["Repository"]:
        """The repository holding `project_dir`, or None when it is not in one."""
        project_dir = project_dir.resolve()
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=project_dir, capture_output=True, text=True)
        return cls(project_dir, Path(top.stdout.strip()).resolve()) if top.returncode == 0 else None

    def _git(self, *args: str, check: bool = True, env: Optional[dict] = None, cwd: Optional[Path] = None,
             data: Optional[bytes] = None, text: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["git", *args], cwd=cwd or self.top, env={**os.environ, **(env or {})},
                              input=data if not text else None, capture_output=True, text=text)
        if check and proc.returncode != 0:
            stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
            raise ReleaseError(f"git {' '.join(args)} failed: {stderr.strip()}")
        return proc

    def repo_path(self, project_path: str) -> str:
        return f"{self.prefix}/{project_path}" if self.prefix not in ("", ".") else project_path

    def head(self) -> Optional[str]:
        proc = self._git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        return proc.stdout.strip() or None

    def uncommitted(self, paths: Sequence[str]) -> list[str]:
        """Files under `paths` that differ from HEAD, untracked ones included."""
        proc = self._git("status", "--porcelain", "--untracked-files=all", "--", *map(self.repo_path, paths))
        return [line[3:] for line in proc.stdout.splitlines() if line.strip()]

    def snapshot(self, paths: Sequence[str], stack: str) -> str:
        """A commit with `paths` as they are in the work tree and everything else as at HEAD."""
        head = self.head()
        if head and not self.uncommitted(paths):
            return head
        with tempfile.TemporaryDirectory() as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if head:
                self._git("read-tree", head, env=index)
            self._git("add", "--all", "--force", "--", *map(self.repo_path, paths), env=index)
            tree = self._git("write-tree", env=index).stdout.strip()
        identity = {k: v for k, v in _IDENTITY.items() if not self._git("config", _config_key(k), check=False).stdout}
        # Dated as HEAD: the same files on the same HEAD give the same commit, not one more per release.
        date = self._git("show", "-s", "--format=%cI", head).stdout.strip() if head else "1970-01-01T00:00:00Z"
        commit = self._git("commit-tree", tree, *(["-p", head] if head else []),
                           "-m", f"Release snapshot of stack {stack}: its stack file and flows as released",
                           env={**identity, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}).stdout.strip()
        self._git("update-ref", f"{SNAPSHOT_REFS}/{commit}", commit)
        return commit

    def has_commit(self, commit: str) -> bool:
        return self._git("cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode == 0

    def files_at(self, commit: str, project_path: str) -> dict[str, bytes]:
        """Every file under `project_path` at `commit`, by path relative to the project root."""
        listed = self._git("ls-tree", "-r", "-z", "--name-only", commit, "--", self.repo_path(project_path))
        out = {}
        for repo_path in filter(None, listed.stdout.split("\0")):
            blob = self._git("cat-file", "blob", f"{commit}:{repo_path}", text=False)
            relative = repo_path[len(self.prefix) + 1:] if self.prefix not in ("", ".") else repo_path
            out[relative] = blob.stdout
        return out


def _config_key(env_name: str) -> str:
    # GIT_AUTHOR_NAME -> user.name, ..._EMAIL -> user.email: the identity git would use.
    return "user.email" if env_name.endswith("EMAIL") else "user.name"


def read_tree(project_dir: Path, project_path: str) -> dict[str, bytes]:
    """The files under `project_path` in the work tree, as `files_at` returns them from a commit."""
    base = project_dir / project_path
    if base.is_file():
        return {project_path: base.read_bytes()}
    return {p.relative_to(project_dir).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def write_tree(project_dir: Path, project_path: str, files: dict[str, bytes]) -> None:
    """Make the work tree under `project_path` hold exactly `files` (as read by read_tree)."""
    for stale in set(read_tree(project_dir, project_path)) - set(files):
        (project_dir / stale).unlink()
    for relative, content in files.items():
        target = project_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
