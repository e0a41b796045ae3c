"""Fixtures for integration tests against a local Kubernetes control plane.

* ``toolchain_bin`` (session): directory holding pulumi and its plugins, etcd,
  kube-apiserver, kube-controller-manager, kube-scheduler and kwok. Runs
  ``bash toolchain/build.sh`` and takes the last line of its stdout
  (``LANGFLOW_TOOLCHAIN_BIN`` skips building). If the toolchain cannot be had:
  ``pytest.fail`` when ``CI=true``, else ``pytest.skip`` with the reason.
* ``local_cluster`` (function) / ``local_cluster_module`` (module): factories;
  ``local_cluster(**kwargs)`` starts and returns a fresh
  ``localcluster.LocalCluster`` in its own tmp dir. Every cluster a factory
  made is stopped at teardown, also when the test failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from localcluster import BINARIES, LocalCluster  # noqa: E402

# What toolchain/build.sh adds to the local cluster's binaries.
PULUMI_TOOLS = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec",
                "pulumi-resource-kubernetes", "pulumi-resource-random", "dex", "oauth2-proxy", "actionlint", "helm")


def _unavailable(reason: str):
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"toolchain unavailable: {reason}", pytrace=False)
    pytest.skip(f"toolchain unavailable: {reason}")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@pytest.fixture(scope="session")
def toolchain_bin() -> Path:
    override = os.environ.get("LANGFLOW_TOOLCHAIN_BIN")
    if override:
        bin_dir = Path(override)
    else:
        cmd = ["bash", str(REPO / "toolchain" / "build.sh")]
        try:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        except OSError as exc:
            _unavailable(f"could not run {' '.join(cmd)}: {exc}")
        if proc.returncode != 0:
            _unavailable(f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{_tail(proc.stderr or proc.stdout)}")
        lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
        if not lines:
            _unavailable("toolchain/build.sh printed no bin directory on stdout")
        bin_dir = Path(lines[-1])
    missing = [b for b in (*BINARIES, *PULUMI_TOOLS) if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        _unavailable(f"missing in {bin_dir}: {', '.join(missing)}")
    return bin_dir


def _factory(bin_dir: Path, tmp_path_factory):
    clusters: list[LocalCluster] = []

    def make(**kwargs) -> LocalCluster:
        workdir = tmp_path_factory.mktemp("localcluster")
        cluster = LocalCluster(bin_dir, workdir, **kwargs)
        clusters.append(cluster)
        cluster.start()  # on failure start() stops what it started and raises
        return cluster

    return make, clusters


def _stopped_at_teardown(bin_dir: Path, tmp_path_factory):
    make, clusters = _factory(bin_dir, tmp_path_factory)
    try:
        yield make
    finally:
        for cluster in reversed(clusters):
            cluster.stop()


@pytest.fixture
def local_cluster(toolchain_bin, tmp_path_factory):
    """Factory: ``cluster = local_cluster()`` -> a started LocalCluster."""
    yield from _stopped_at_teardown(toolchain_bin, tmp_path_factory)


@pytest.fixture(scope="module")
def local_cluster_module(toolchain_bin, tmp_path_factory):
    """Like ``local_cluster`` but clusters live until the module's tests end."""
    yield from _stopped_at_teardown(toolchain_bin, tmp_path_factory)


def require_real_node(bin_dir: Path) -> None:
    """Skip (fail with CI=true) where the local cluster's real node cannot start (docs/real-node.md)."""
    from localcluster import node
    reason = node.unavailable(bin_dir)
    if reason:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"no real node here: {reason}", pytrace=False)
        pytest.skip(f"no real node here: {reason}")


def headless_chromium(tmp_path: Path, *arguments: str):
    """Debian's Chromium and chromedriver, headless (nothing is downloaded); the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900",
                f"--user-data-dir={tmp_path / 'chromium'}", *arguments):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver", log_output=str(tmp_path / "chromedriver.log")),
                            options=options)
