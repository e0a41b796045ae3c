"""Releases on the real engine: `python -m releases` (what `make up|releases|rollback` run) against a
local cluster, on a git clone of the project with a self-managed backend, as an operator uses them."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from localcluster.stages import NEVER_READY_REGISTRY
from releases.database import STOPPED_ANNOTATION
from tests.integration.pulumi_project import Project
from tests.integration.test_stacks_real import (
    completed, deployment, flows_config_map, jobs, replica_sets, rolled_out,
)

pytestmark = pytest.mark.integration


def image_of(client, namespace: str) -> str:
    return deployment(client, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]


def restore_jobs(client, namespace: str) -> list[dict]:
    return [j for j in jobs(client, namespace) if j["metadata"]["name"].startswith("langflow-restore-")]


def deployed_flow(client, namespace: str) -> dict:
    name = flows_config_map(deployment(client, namespace))
    return json.loads(client.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")["data"]["echo.json"])


def releases_listed(project: Project) -> list[str]:
    listed = project.releases("list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.strip().splitlines()[1:]


def ok(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


def refused(run: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 (refused before anything changed), saying each fragment."""
    assert run.returncode == 2, f"exit {run.returncode}\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    for fragment in fragments:
        assert fragment in run.stderr, run.stderr


def change_flow(project: Project, description: str) -> None:
    flow_file = project.root / "flows" / "echo.json"
    flow = json.loads(flow_file.read_text())
    flow["description"] = description
    flow_file.write_text(json.dumps(flow, indent=2))


def test_rollback_restores_image_flows_and_stack_file(toolchain_bin, local_cluster, tmp_path):
    cluster = local_cluster()
    client, namespace = cluster.client(), "langflow-dev"
    project = Project(tmp_path, "dev", toolchain_bin, cluster.kubeconfig, git=True)

    refused(project.releases("rollback"), "no release of this stack is live")
    ok(project.releases("up", "--message", "v1"))
    v1_stack, v1_flow = project.stack_file().read_text(), deployed_flow(client, namespace)
    refused(project.releases("rollback"), "release 1 is live and no earlier successful release differs")

    # v2: a new image and a changed flow, committed as an operator would.
    project.set_path("image.tag", "1.6.5")
    change_flow(project, "v2 of the flow")
    project.commit("v2")
    ok(project.releases("up", "--message", "v2"))
    assert image_of(client, namespace) == "langflowai/langflow:1.6.5"
    assert deployed_flow(client, namespace)["description"] == "v2 of the flow"

    # Bad input changes nothing: no history entry, no file touched.
    refused(project.releases("rollback", "--to", "7"), "there is no release 7", "releases are 1 to 2")
    project.stack_file().write_text(project.stack_file().read_text() + "\n# an edit not yet committed\n")
    refused(project.releases("rollback"), "uncommitted changes in Pulumi.dev.yaml", "commit or stash")
    project.git("checkout", "--", "Pulumi.dev.yaml")
    assert len(releases_listed(project)) == 2

    started = time.monotonic()
    output = ok(project.releases("rollback"))
    seconds = time.monotonic() - started
    # One program run: no preview first (no database to restore), the update shows its changes as a diff.
    assert "Rollback from release 2 to 1" in output and "Previewing update" not in output
    assert '"langflowai/langflow:1.6.5" => "langflowai/langflow:1.6.4"' in output
    # Measured 12 s on a quiet machine (make benchmark).
    assert seconds <= 45, f"rollback took {seconds:.1f} s"
    # v1's image and flows run, rolled out, and the repo's files are v1's again, ready to commit.
    deploy = deployment(client, namespace)
    assert rolled_out(deploy) and image_of(client, namespace) == "langflowai/langflow:1.6.4"
    assert deployed_flow(client, namespace) == v1_flow
    assert project.stack_file().read_text() == v1_stack
    assert json.loads((project.root / "flows" / "echo.json").read_text()) == v1_flow
    assert set(project.git("status", "--porcelain").split()) >= {"M", "Pulumi.dev.yaml", "flows/echo.json"}
    listed = releases_listed(project)
    assert len(listed) == 3
    assert "rollback from release 2 to 1" in listed[2] and listed[2].endswith("<- live")
    assert "langflowai/langflow:1.6.4" in listed[2] and "langflowai/langflow:1.6.5" in listed[1]

    # Forward again to a named release: its files come back from git too.
    project.commit("back on v1")
    ok(project.releases("rollback", "--to", "2"))
    assert image_of(client, namespace) == "langflowai/langflow:1.6.5"
    assert deployed_flow(client, namespace)["description"] == "v2 of the flow"
    assert "1.6.5" in project.stack_file().read_text()
    project.commit("forward to v2")

    # A release made by hand (`pulumi up`, no record) from files never committed: its config comes back
    # from the history alone, every secret still encrypted; its flows are unknown, so only with FLOWS=keep.
    project.set_path("resources.requests.cpu", "300m")
    project.run("config", "set", "--secret", "--path", "auth.secret_key", "A" * 43 + "=")
    project.up()
    project.git("checkout", "--", ".")
    ok(project.releases("up", "--message", "v2 again"))
    refused(project.releases("rollback", "--to", "5"), "the flows of release 5 are not in this repository")
    ok(project.releases("rollback", "--to", "5", "--keep-flows"))
    container = deployment(client, namespace)["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "300m"
    restored = project.stack_file().read_text()
    assert "A" * 43 not in restored and "secure: v1:" in restored
    assert project.run("config", "get", "--path", "auth.secret_key").stdout.strip() == "A" * 43 + "="
    assert project.run("config", "get", "--path", "auth.enabled").stdout.strip() == "false"
    project.commit("back on release 5")

    # Across a schema change: Langflow 1.13.0 migrates the database, so going back restores its snapshot.
    project.set_path("image.tag", "1.13.0")
    project.commit("v7: Langflow 1.13.0")
    ok(project.releases("up", "--message", "v7"))
    assert "e5a7c9b1d3f" in releases_listed(project)[-1]  # the schema each release runs
    v7_stack = project.stack_file().read_text()
    refused(project.releases("rollback"), "Langflow 1.6.5 (release 7) cannot run on it",
            "everything written since", "CONFIRM=restore", "Nothing was changed")
    assert project.stack_file().read_text() == v7_stack and image_of(client, namespace).endswith(":1.13.0")
    assert deployment(client, namespace)["spec"]["replicas"] == 1 and not restore_jobs(client, namespace)
    output = ok(project.releases("rollback", "--confirm-restore"))
    assert "Langflow stopped: 1 pod(s) scaled to 0" in output and "Database restored" in output
    # The program ran once (a preview) before the database was overwritten.
    assert output.index("Previewing update") < output.index("Langflow stopped")
    (job,) = restore_jobs(client, namespace)
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BACKUP_LABEL"] == "before-1.13.0" and env["CONFIRM"] == "restore" and env["BACKUP_KIND"] == "snapshot"
    assert completed(job)
    deploy = deployment(client, namespace)
    assert rolled_out(deploy) and deploy["spec"]["replicas"] == 1 and image_of(client, namespace).endswith(":1.6.5")
    assert STOPPED_ANNOTATION not in deploy["metadata"]["annotations"]  # nothing for recovery to start again
    project.commit("back on 1.6.5")

    # A restore of a scheduled backup: confirmed, with Langflow stopped for it and started again.
    refused(project.releases("restore", "--from", "latest"), "overwrites the database", "CONFIRM=restore")
    assert len(restore_jobs(client, namespace)) == 1
    output = ok(project.releases("restore", "--from", "scheduled-20261201T030000Z-scheduled", "--confirm-restore"))
    assert "Langflow stopped" in output and "Langflow started again with 1 pod(s)" in output
    assert len(restore_jobs(client, namespace)) == 2 and deployment(client, namespace)["spec"]["replicas"] == 1
    assert STOPPED_ANNOTATION not in deployment(client, namespace)["metadata"]["annotations"]

    # A restore killed while Langflow was stopped for it leaves the Deployment at 0 with its mark: the next
    # command starts Langflow again (a plain `pulumi up` would not: the state still says 1 replica).
    client.merge_patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/langflow",
                       {"metadata": {"annotations": {STOPPED_ANNOTATION: "1"}}, "spec": {"replicas": 0}})
    output = ok(project.releases("up", "--message", "after an interrupted restore"))
    assert "Recovery: started Langflow again with 1 pod(s)" in output, output[-3000:]
    deploy = deployment(client, namespace)
    assert deploy["spec"]["replicas"] == 1 and STOPPED_ANNOTATION not in deploy["metadata"]["annotations"]


def test_atomic_release_that_fails_its_rollout_ends_on_the_live_release(toolchain_bin, local_cluster, tmp_path):
    cluster = local_cluster()
    client, namespace = cluster.client(), "langflow-dev"
    project = Project(tmp_path, "dev", toolchain_bin, cluster.kubeconfig, git=True)
    ok(project.releases("up", "--message", "v1"))
    v1_generation = deployment(client, namespace)["metadata"]["generation"]
    change_flow(project, "v1.1")
    project.commit("v1.1")
    ok(project.releases("up", "--message", "v1.1"))
    # A flow-only release goes live through the flow sync: the pods stay as they were.
    assert deployment(client, namespace)["metadata"]["generation"] == v1_generation

    # v2 pulls from a registry the simulated cluster never makes ready, and waits 20 s for it.
    project.set_path("image.registry", NEVER_READY_REGISTRY)
    project.set_path("rollout.timeout_seconds", "20")
    project.commit("v2")
    v2_stack = project.stack_file().read_text()
    release = subprocess.Popen([sys.executable, "-m", "releases", "up", "--atomic", "--message", "v2",
                                "--stack", "dev"], cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        # While it holds the stack, a rollback is refused and changes nothing.
        locks = tmp_path / "backend" / ".pulumi" / "locks"
        deadline = time.monotonic() + 60
        while not list(locks.rglob("*.json")) and time.monotonic() < deadline and release.poll() is None:
            time.sleep(0.2)
        # An atomic release may rewrite the work tree (its rollback): a rollback beside it is refused at once,
        # before it touches a file.
        refused(project.releases("rollback"), "another release command runs in this project (`make up`, pid "
                f"{release.pid})", "Nothing was changed")
        assert project.stack_file().read_text() == v2_stack
        stdout, stderr = release.communicate(timeout=300)
    finally:
        release.kill()
    assert release.returncode == 1, stdout[-3000:] + stderr[-3000:]
    assert "rolled back to release 2, which is live again" in stderr, stderr
    # The previous release runs, and the operator's failed config is kept for them to fix.
    deploy = deployment(client, namespace)
    assert rolled_out(deploy) and image_of(client, namespace) == "langflowai/langflow:1.6.4"
    assert deployed_flow(client, namespace)["description"] == "v1.1"
    assert project.stack_file().read_text() == v2_stack
    listed = releases_listed(project)
    assert [line.split()[3] for line in listed] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert "atomic rollback from release 3 to 2" in listed[3] and listed[3].endswith("<- live")

    # A flow-only rollback (to release 1: v1's flows, the same image) is one command and rolls no pods.
    project.commit("v2 set aside")
    generation, sets = deploy["metadata"]["generation"], len(replica_sets(client, namespace))
    started = time.monotonic()
    output = ok(project.releases("rollback"))
    seconds = time.monotonic() - started
    assert "Rollback from release 4 to 1" in output and seconds <= 45, (seconds, output[-2000:])
    assert deployed_flow(client, namespace)["description"] != "v1.1"
    assert json.loads((project.root / "flows" / "echo.json").read_text()) == deployed_flow(client, namespace)
    deploy = deployment(client, namespace)
    assert deploy["metadata"]["generation"] == generation and len(replica_sets(client, namespace)) == sets
