"""A copy of the project driven through the real Pulumi CLI (integration tests, benchmark)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


class PulumiFailed(AssertionError):
    """A pulumi command failed; the message holds its output."""


REPO = Path(__file__).resolve().parents[2]
DEV_PASSPHRASE = "langflow-dev"
PROJECT_FILES = ["Pulumi.yaml", "__main__.py", "requirements.txt", "components", "settings", "flows", "flowsync", "releases",
                 "policy", ".gitignore"]


class Project:
    """A copy of the project with its own backend, run through the real CLI."""

    def __init__(self, root: Path, stack: str, bin_dir: Path, kubeconfig: Path, *, git: bool = False):
        self.root, self.stack = root / "project", stack
        self.root.mkdir(parents=True)
        for name in PROJECT_FILES + [f"Pulumi.{stack}.yaml"]:
            source = REPO / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, self.root / name)
        # The virtualenv running these tests has the locked dependencies.
        (self.root / ".venv").symlink_to(Path(sys.prefix))
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PULUMI_BACKEND_URL": f"file://{root / 'backend'}",
            "PULUMI_HOME": str(root / "pulumi-home"),
            # dev's committed encryptionsalt belongs to its documented passphrase.
            "PULUMI_CONFIG_PASSPHRASE": DEV_PASSPHRASE if stack == "dev" else "integration-test",
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SELF_MANAGED_STATE_LOCKING": "1",
            # The providers from the plugin store, as scripts/stack-env.sh has them (no ambient-plugin warnings).
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            "KUBECONFIG": str(kubeconfig),
            # A git identity for the commits tests make, whatever the machine has.
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
        }
        self.env.pop("PULUMI_CONFIG", None)
        subprocess.run(["bash", str(REPO / "toolchain" / "plugins.sh"), str(bin_dir), self.env["PULUMI_HOME"]], check=True)
        (root / "backend").mkdir()
        self.run("stack", "init", stack, stack_flag=False)
        if git:
            self.git("init", "-q", "-b", "main")
            self.commit("the project as in the repo")

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.root, env=self.env, capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def releases(self, *args: str) -> subprocess.CompletedProcess:
        """`python -m releases <args> --stack <stack>`, as `make up|releases|rollback` run it."""
        argv = [sys.executable, "-m", "releases", *args, "--stack", self.stack]
        return subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=900)

    def run(self, *args: str, check: bool = True, stack_flag: bool = True) -> subprocess.CompletedProcess:
        argv = ["pulumi", *args, "--non-interactive"] + (["--stack", self.stack] if stack_flag else [])
        proc = subprocess.run(argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=900)
        if check and proc.returncode != 0:
            raise PulumiFailed(f"`{' '.join(argv)}` exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def up(self, *extra: str) -> subprocess.CompletedProcess:
        return self.run("up", "--yes", "--skip-preview", *extra)

    def set_path(self, path: str, value: str) -> None:
        self.run("config", "set", "--path", path, value)

    def outputs(self) -> dict:
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)

    def stack_file(self) -> Path:
        return self.root / f"Pulumi.{self.stack}.yaml"
