"""Wall time of the operations users run, per stack, on a fresh local cluster.

Not a test: prints a table for the README. Needs the toolchain
(`make benchmark` passes its bin dir in LANGFLOW_TOOLCHAIN_BIN).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localcluster import LocalCluster  # noqa: E402
from tests.integration.pulumi_project import Project  # noqa: E402


def timed(label: str, results: list, action) -> None:
    start = time.monotonic()
    done = action()
    if getattr(done, "returncode", 0) != 0:
        raise SystemExit(f"{label} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    results.append((label, time.monotonic() - start))


def change_flow(project: Project, description: str) -> None:
    flow_file = project.root / "flows" / "echo.json"
    flow = json.loads(flow_file.read_text())
    flow["description"] = description
    flow_file.write_text(json.dumps(flow, indent=2))
    project.commit(description)


def bench(stack: str, bin_dir: Path) -> list[tuple[str, float]]:
    """What `make preview|up|rollback|destroy` run, each on the same fresh cluster and git clone."""
    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        with LocalCluster(bin_dir, Path(tmp) / "cluster") as cluster:
            project = Project(Path(tmp), stack, bin_dir, cluster.kubeconfig, git=True)
            timed("preview", results, lambda: project.run("preview"))
            timed("up (create)", results, lambda: project.releases("up"))
            timed("up (no change)", results, lambda: project.releases("up"))
            project.set_path("image.tag", "1.6.5")
            project.commit("1.6.5")
            timed("up (image update)", results, lambda: project.releases("up"))
            timed("rollback (preview included)", results, lambda: project.releases("rollback"))
            project.commit("back on 1.6.4")
            # A flow change, live through the flow sync (no pod rolls), then with flows.update: restart.
            change_flow(project, "benchmark: synced")
            timed("up (flow change, sync)", results, lambda: project.releases("up"))
            project.set_path("flows.update", "restart")
            project.commit("flows restart the pods")
            project.releases("up")
            change_flow(project, "benchmark: restarted")
            timed("up (flow change, restart)", results, lambda: project.releases("up"))
            timed("destroy", results, lambda: project.run("destroy", "--yes", "--exclude-protected"))
    return results


def main() -> int:
    bin_dir = Path(os.environ["LANGFLOW_TOOLCHAIN_BIN"])
    table = {stack: bench(stack, bin_dir) for stack in ("dev", "prod")}
    print("| operation | dev | prod |")
    print("| --- | --- | --- |")
    for index, (label, _) in enumerate(table["dev"]):
        print(f"| {label} | {table['dev'][index][1]:.1f} s | {table['prod'][index][1]:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
