"""This program side by side with Helm, on one local cluster: install, image update, rollback, remove, preview.

Not a timed test: it prints the table the README holds (`make benchmark`; `--write-readme` puts it there).
CI runs it once with `--quick` (one run, overhead only) to prove that it works.

- Ours: the dev stack, run as `make` runs it (`scripts/stack-env.sh` + `python -m releases`, `scripts/pulumi.sh
  preview`), from a git clone of the project.
- Helm: a chart that holds the same objects, rendered by this program (the Kubernetes provider's
  `renderYamlToDirectory`) for each image, applied with `helm upgrade --install --wait --wait-for-jobs`,
  `helm rollback --wait --wait-for-jobs`, `helm uninstall`; preview is `helm upgrade --dry-run`.
  Both wait for the same things: the rollout, the Jobs (in the chart, hooks that run after each install,
  upgrade and rollback, since a Job cannot be patched). The official chart cannot be fetched here, and is not
  ours to copy; its figures are kept in the README as a reference.
- Two modes: *overhead*, simulated Langflow pods ready and gone at once (each figure is the tool's own
  time); *end to end*, a Langflow pod takes LANGFLOW_START_SECONDS to become ready and stops as slowly as a
  real one (localcluster/stages.py).
- Runs are interleaved (ours, then Helm, per run); medians of RUNS. "remove" ends when no Langflow pod is left.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localcluster import LocalCluster  # noqa: E402
from localcluster.stages import LANGFLOW_STOP_SECONDS  # noqa: E402
from tests.integration.pulumi_project import Project  # noqa: E402

# An idle Langflow's start on 2 cores (25 to 40 s: ../shared/reference/platform.md, `make verify`).
LANGFLOW_START_SECONDS = 30.0
OPERATIONS = ("install", "preview", "image update", "rollback", "remove")
IMAGES = ("1.6.4", "1.6.5")
OURS_NAMESPACE, HELM_NAMESPACE, RELEASE = "langflow-dev", "langflow-helm", "langflow"
# What `make` needs beside the project files the tests copy.
MAKE_FILES = ("scripts", "toolchain")
HELM_JOB_HOOK = {"helm.sh/hook": "post-install,post-upgrade,post-rollback",
                 "helm.sh/hook-delete-policy": "before-hook-creation"}
README_MARKERS = ("<!-- benchmark:start -->", "<!-- benchmark:end -->")

Timings = dict[str, list[float]]


def _check(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _timed(timings: Timings, operation: str, action: Callable[[], object]) -> None:
    started = time.monotonic()
    action()
    timings.setdefault(operation, []).append(time.monotonic() - started)


def _langflow_pods(cluster: LocalCluster, namespace: str) -> list[dict]:
    return [p for p in cluster.client().items(f"/api/v1/namespaces/{namespace}/pods")
            if any(c["name"] == "langflow" for c in p["spec"]["containers"])]


def _wait(condition: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def _delete_namespace(cluster: LocalCluster, namespace: str) -> None:
    """Between runs, not timed: the next install starts from nothing (our protected namespace included)."""
    client = cluster.client()
    if client.get_or_none(f"/api/v1/namespaces/{namespace}") is not None:
        client.delete(f"/api/v1/namespaces/{namespace}")
    _wait(lambda: client.get_or_none(f"/api/v1/namespaces/{namespace}") is None, f"namespace {namespace} gone")


class Ours:
    """The dev stack in a git clone of the project, through the commands `make` runs."""

    def __init__(self, root: Path, bin_dir: Path, cluster: LocalCluster):
        self.cluster = cluster
        self.project = Project(root, "dev", bin_dir, cluster.kubeconfig, git=True)
        for name in MAKE_FILES:
            shutil.copytree(REPO / name, self.project.root / name)
        self.project.commit("make's scripts")

    def _make(self, *argv: str) -> None:
        proc = subprocess.run(["bash", "scripts/stack-env.sh", "dev", *argv], cwd=self.project.root,
                              env=self.project.env, capture_output=True, text=True, timeout=900)
        _check(proc, " ".join(argv))

    def _releases(self, *args: str) -> None:
        self._make(".venv/bin/python", "-m", "releases", *args, "--stack", "dev")

    def run(self, timings: Timings) -> None:
        _timed(timings, "install", lambda: self._releases("up", "--message", "install"))
        self.project.set_path("image.tag", IMAGES[1])
        self.project.commit(f"image {IMAGES[1]}")
        _timed(timings, "preview", lambda: self._make("pulumi", "preview", "--diff", "--policy-pack", "policy",
                                                      "--stack", "dev"))
        _timed(timings, "image update", lambda: self._releases("up", "--message", "image update"))
        _timed(timings, "rollback", lambda: self._releases("rollback"))
        self.project.commit("rolled back")
        _timed(timings, "remove", lambda: (self._releases("destroy"), _wait(
            lambda: not _langflow_pods(self.cluster, OURS_NAMESPACE), "our Langflow pods gone")))
        _delete_namespace(self.cluster, OURS_NAMESPACE)


def render_chart(root: Path, bin_dir: Path, cluster: LocalCluster, tag: str, version: int) -> Path:
    """A chart of the objects the program renders for the dev stack with this image, in HELM_NAMESPACE.

    The manifests are the chart's files, not templates (`.Files.Get`): Helm does not parse them, so a flow's
    text can hold anything. The Namespace is left out: Helm creates it (--create-namespace)."""
    rendered = root / f"rendered-{version}"
    project = Project(root / f"render-{version}", "dev", bin_dir, cluster.kubeconfig)
    project.set_path("namespace", HELM_NAMESPACE)
    project.set_path("image.tag", tag)
    project.run("config", "set", "kubernetes:renderYamlToDirectory", str(rendered))
    project.up()
    chart = root / f"chart-{version}"
    (chart / "templates").mkdir(parents=True)
    (chart / "manifests").mkdir()
    for manifest in sorted((rendered / "1-manifest").glob("*.yaml")):
        obj = yaml.safe_load(manifest.read_text())
        if obj["kind"] == "Namespace":
            continue
        if obj["kind"] == "Job":
            # A Job's pod template cannot be patched: as a Helm chart does it, a hook Job, recreated by each
            # install, upgrade and rollback and waited for.
            obj["metadata"].setdefault("annotations", {}).update(HELM_JOB_HOOK)
        (chart / "manifests" / manifest.name).write_text(yaml.safe_dump(obj))
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: langflow-objects\nversion: 0.1.{version}\n"
                                      f"appVersion: \"{tag}\"\n")
    (chart / "templates" / "objects.yaml").write_text(
        '{{- range $path, $_ := .Files.Glob "manifests/*.yaml" }}\n---\n{{ $.Files.Get $path }}\n{{- end }}\n')
    return chart


class Helm:
    """The same objects through Helm, one release in its own namespace."""

    def __init__(self, root: Path, bin_dir: Path, cluster: LocalCluster, charts: tuple[Path, Path]):
        self.cluster, self.charts = cluster, charts
        self.helm = str(bin_dir / "helm")
        home = root / "helm-home"
        self.env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HELM_CACHE_HOME": str(home / "cache"),
                    "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}

    def _helm(self, *args: str) -> None:
        proc = subprocess.run([self.helm, *args, "--namespace", HELM_NAMESPACE], env=self.env,
                              capture_output=True, text=True, timeout=900)
        _check(proc, "helm " + " ".join(args))

    def run(self, timings: Timings) -> None:
        wait = ("--wait", "--wait-for-jobs", "--timeout", "10m")
        _timed(timings, "install", lambda: self._helm("upgrade", "--install", RELEASE, str(self.charts[0]),
                                                      "--create-namespace", *wait))
        _timed(timings, "preview", lambda: self._helm("upgrade", RELEASE, str(self.charts[1]), "--dry-run"))
        _timed(timings, "image update", lambda: self._helm("upgrade", RELEASE, str(self.charts[1]), *wait))
        _timed(timings, "rollback", lambda: self._helm("rollback", RELEASE, "1", *wait))
        _timed(timings, "remove", lambda: (self._helm("uninstall", RELEASE), _wait(
            lambda: not _langflow_pods(self.cluster, HELM_NAMESPACE), "Helm's Langflow pods gone")))
        _delete_namespace(self.cluster, HELM_NAMESPACE)


def measure(bin_dir: Path, runs: int, start_seconds: float, stop_seconds: float) -> tuple[Timings, Timings]:
    """Both tools on one fresh cluster, interleaved, `runs` times."""
    ours: Timings = {}
    helm: Timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with LocalCluster(bin_dir, root / "cluster", langflow_start_seconds=start_seconds,
                          langflow_stop_seconds=stop_seconds) as cluster:
            charts = (render_chart(root, bin_dir, cluster, IMAGES[0], 1),
                      render_chart(root, bin_dir, cluster, IMAGES[1], 2))
            for run in range(runs):
                Ours(root / f"ours-{run}", bin_dir, cluster).run(ours)
                Helm(root / f"helm-{run}", bin_dir, cluster, charts).run(helm)
    return ours, helm


def table(title: str, ours: Timings, helm: Timings) -> str:
    lines = [f"{title}", "", "| step | ours | Helm | ratio |", "|---|---|---|---|"]
    for operation in OPERATIONS:
        mine, theirs = statistics.median(ours[operation]), statistics.median(helm[operation])
        lines.append(f"| {operation} | {mine:.1f} | {theirs:.1f} | {mine / theirs:.1f} |")
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = REPO / "README.md"
    start, end = README_MARKERS
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    content = readme.read_text()
    if not pattern.search(content):
        raise SystemExit(f"README.md has no {start} ... {end} section to write the table into")
    readme.write_text(pattern.sub(lambda _: f"{start}\n{text}\n{end}", content))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one run, overhead only (CI: proves that it works)")
    parser.add_argument("--write-readme", action="store_true", help="put the tables into README.md")
    args = parser.parse_args(argv)
    bin_dir = Path(os.environ["LANGFLOW_TOOLCHAIN_BIN"])
    runs = 1 if args.quick else args.runs
    modes = [("Overhead: simulated Langflow pods ready and gone at once", 0.0, 0.0)]
    if not args.quick:
        modes.append((f"End to end: a simulated Langflow pod takes {LANGFLOW_START_SECONDS:.0f} s to start and "
                      f"{LANGFLOW_STOP_SECONDS} s to stop", LANGFLOW_START_SECONDS, LANGFLOW_STOP_SECONDS))
    tables = []
    for title, start_seconds, stop_seconds in modes:
        ours, helm = measure(bin_dir, runs, start_seconds, stop_seconds)
        tables.append(table(f"{title}; seconds, median of {runs}:", ours, helm))
        print(tables[-1] + "\n", flush=True)
    if args.write_readme:
        write_readme("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
