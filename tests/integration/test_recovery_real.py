"""Interrupted updates on the real engine: `python -m releases` (what `make up|destroy` run) killed with
SIGKILL, its whole process group, at points taken from the engine's own progress (the pending
operations it records in the state before each resource step), then one command run after it.

Also: two updates at once, and the Kubernetes API server stopping during an update.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from releases.processes import RUN_MARKER, marked, running
from tests.integration.pulumi_project import Project

pytestmark = pytest.mark.integration
NAMESPACE = "langflow-dev"
# Objects the cluster makes by itself in a namespace: nobody's state holds them.
CLUSTER_MADE = {("ConfigMap", "kube-root-ca.crt"), ("ServiceAccount", "default")}
CLUSTER_MADE_KINDS = {"Event", "Endpoints", "Lease"}


def checkpoint(project: Project) -> dict:
    """The stack's state as the engine last wrote it (read while it runs: the kill points come from it)."""
    path = project.root.parent / "backend" / ".pulumi" / "stacks" / "langflow" / f"{project.stack}.json"
    try:
        return json.loads(path.read_text())["checkpoint"].get("latest") or {}
    except (OSError, ValueError, KeyError):
        return {}  # not written yet, or caught mid-write


def pending(project: Project) -> list[tuple[str, str]]:
    return [(op["type"], op["resource"]["urn"]) for op in checkpoint(project).get("pending_operations") or []]


def locks(project: Project) -> list[Path]:
    return list((project.root.parent / "backend" / ".pulumi" / "locks").glob("**/*.json"))


def object_path(urn: str) -> str:
    """The API path of the stack's Service or Deployment a URN names (named as their resources are)."""
    kind = urn.split("::")[-2].rsplit(":", 1)[-1]
    collection = {"Deployment": "apis/apps/v1/namespaces/{ns}/deployments",
                  "Service": "api/v1/namespaces/{ns}/services"}[kind]
    return f"/{collection.format(ns=NAMESPACE)}/{urn.rsplit('::', 1)[-1]}"


class Run:
    """`python -m releases <args>` started as make starts it, in a process group of its own."""

    def __init__(self, project: Project, *args: str):
        self.log = project.root.parent / f"run-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "releases", *args, "--stack", project.stack],
                                     cwd=project.root, env=project.env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def processes(self) -> list[int]:
        """Its processes, the leader's included: they carry the run's mark."""
        return [pid for pid, mark in marked(RUN_MARKER).items() if mark.startswith(f"{self.proc.pid}@")]

    def kill_when(self, hit: Callable[[], bool], timeout: float = 300) -> list[int]:
        """SIGKILL the whole group as soon as `hit()`; the run's processes that outlive the kill."""
        deadline = time.monotonic() + timeout
        while not hit():
            assert self.proc.poll() is None, f"the run ended before the kill point:\n{self.output()[-3000:]}"
            assert time.monotonic() < deadline, "the kill point never came"
            time.sleep(0.02)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return self.processes()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def created_in_flight(project: Project, client) -> list[str]:
    """Paths of the Deployments with a pending create whose object the cluster has: the create reached the API
    server, and the provider waits for its rollout (seconds, so a kill lands while it is still pending; a
    Service's create can end between this check and the kill). (Objects the provider names itself are deleted
    and made again instead of adopted: releases/recovery.py.)"""
    return [object_path(urn) for kind, urn in pending(project)
            if kind == "creating" and ":Deployment::" in urn and client.get_or_none(object_path(urn)) is not None]


def pulumi_managers(obj: dict) -> set[str]:
    """The Pulumi field managers (pulumi-kubernetes-<random>, one per resource and create) of an object."""
    return {e["manager"] for e in obj["metadata"].get("managedFields") or []
            if e["manager"].startswith("pulumi-kubernetes-")}


def unknown_objects(project: Project, client) -> set[tuple[str, str]]:
    """Objects in the stack's namespace that no resource in the state names (nor another object owns)."""
    known = {(r["type"].rsplit(":", 1)[-1], r.get("id", "").split("/")[-1])
             for r in checkpoint(project).get("resources") or [] if r["type"].startswith("kubernetes:")}
    found = set()
    groups = ["/api/v1"] + [f"/apis/{v['groupVersion']}" for g in client.get("/apis")["groups"]
                            for v in g["versions"][:1]]
    for group in groups:
        for resource in client.get(group)["resources"]:
            if not resource["namespaced"] or "/" in resource["name"] or "list" not in resource["verbs"] \
                    or resource["kind"] in CLUSTER_MADE_KINDS:
                continue
            for item in client.items(f"{group}/namespaces/{NAMESPACE}/{resource['name']}"):
                meta = item["metadata"]
                key = (resource["kind"], meta["name"])
                if not meta.get("ownerReferences") and key not in CLUSTER_MADE and key not in known:
                    found.add(key)
    return found


def claim_uid(client) -> str:
    return client.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims/langflow-data")["metadata"]["uid"]


def secret_key(client) -> str:
    secrets = client.items(f"/api/v1/namespaces/{NAMESPACE}/secrets")
    data = [s["data"] for s in secrets if "LANGFLOW_SECRET_KEY" in (s.get("data") or {})]
    assert len(data) == 1, [s["metadata"]["name"] for s in secrets]
    return base64.b64decode(data[0]["LANGFLOW_SECRET_KEY"]).decode()


def assert_settled(project: Project, client, orphans: list[int], *, deployed: bool = True) -> None:
    assert pending(project) == [], pending(project)
    assert locks(project) == []
    assert [pid for pid in orphans if running(pid)] == [], "a process of the killed run still runs"
    assert unknown_objects(project, client) == set()
    if deployed:
        project.run("preview", "--expect-no-changes")


def ok(run: Run) -> str:
    assert run.proc.wait(timeout=600) == 0, run.output()[-4000:]
    return run.output()


# How long a simulated Langflow pod takes to become ready here: the kill point of step 1 is a Deployment create
# in flight, which lasts as long as its rollout. At once (0 s, the other tests' setting) the create can end
# within one look of the kill point on a busy machine; a real Langflow takes 30 s and more.
LANGFLOW_START_SECONDS = 3


def test_an_interrupted_update_is_settled_by_the_next_command(toolchain_bin, local_cluster, tmp_path):
    cluster = local_cluster(langflow_start_seconds=LANGFLOW_START_SECONDS)
    client = cluster.client()
    project = Project(tmp_path, "dev", toolchain_bin, cluster.kubeconfig, git=True)

    # 1. The first create, killed once the Deployment it creates exists in the cluster and the state does not
    #    hold it yet: the next `make up` adopts it (same uid), clears the stale lock, ends the orphans. The
    #    adopting create applies under a field manager of its own: the killed run's hands its fields over to it.
    run = Run(project, "up")
    killed_at: list[str] = []  # the path as the kill point saw it: the pending create may end right after

    def deployment_create_in_flight() -> bool:
        killed_at[:] = created_in_flight(project, client)
        return bool(killed_at)

    orphans = run.kill_when(deployment_create_in_flight)
    assert orphans, "the engine's plugins should outlive the kill: the case to recover from"
    path = killed_at[0]
    uid = client.get(path)["metadata"]["uid"]
    (killed_manager,) = pulumi_managers(client.get(path))
    assert locks(project), "the killed run holds the lock"
    output = ok(Run(project, "up"))
    for said in ("Recovery: cleared the stale lock of", "that process no longer runs", "Recovery: ended",
                 "Recovery: adopt", f"handed the fields of field manager(s) {killed_manager} over to"):
        assert said in output, output[-4000:]
    assert client.get(path)["metadata"]["uid"] == uid, "adopted, not recreated"
    assert_settled(project, client, orphans)
    # One Pulumi field manager holds the fields, the adopting one: the image update of step 2 meets no conflict.
    managers = pulumi_managers(client.get(path))
    assert len(managers) == 1 and killed_manager not in managers, client.get(path)["metadata"]["managedFields"]
    history = project.run("stack", "history", "--json").stdout
    assert "recovered first: " in history and "cleared the stale lock" in history
    claim, key = claim_uid(client), secret_key(client)

    # 2. An image update, killed while the Deployment's update is in flight.
    project.set_path("image.tag", "1.6.5")
    run = Run(project, "up")
    orphans = run.kill_when(lambda: any(k == "updating" and "Deployment" in u for k, u in pending(project)))
    output = ok(Run(project, "up"))
    assert "refresh Deployment langflow" in output and "interrupted while updating" in output, output[-4000:]
    assert "Deployment langflow-dev/langflow finished the rollout the interrupted update started" in output
    assert_settled(project, client, orphans)
    deploy = client.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/langflow")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "langflowai/langflow:1.6.5"
    assert (claim_uid(client), secret_key(client)) == (claim, key)

    # 3. Two updates at once: one wins; the other is refused at once, its holder named, the lock kept.
    project.set_path("resources.requests.cpu", "300m")
    first = Run(project, "up")
    deadline = time.monotonic() + 120
    while not locks(project):
        assert first.proc.poll() is None and time.monotonic() < deadline, first.output()[-3000:]
        time.sleep(0.05)
    holders = [pid for pid in first.processes() if Path(f"/proc/{pid}/comm").read_text().strip() == "pulumi"]
    second = Run(project, "up")
    assert second.proc.wait(timeout=120) == 2, second.output()[-3000:]
    refusal = second.output()
    assert any(f"(pid {pid}," in refusal for pid in holders), (holders, refusal)
    assert "is locked by" in refusal and "running on this host" in refusal and "pulumi cancel" in refusal, refusal
    assert "Nothing was changed" in refusal and "Recovery:" not in refusal
    ok(first)
    assert_settled(project, client, [])

    # 4. The API server stops while an update waits for the rollout it started (the provider would wait up to
    #    the rollout deadline): it fails within the bound, and the next `make up` converges.
    project.set_path("image.tag", "1.6.4")
    run = Run(project, "up", "--api-outage-seconds", "8")
    deadline = time.monotonic() + 300
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/langflow"
    while not (any(k == "updating" and "Deployment" in u for k, u in pending(project))
               and client.get(path)["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.6.4")):
        assert run.proc.poll() is None and time.monotonic() < deadline, run.output()[-3000:]
        time.sleep(0.02)
    stopped = time.monotonic()
    cluster.stop_apiserver(timeout=1)  # as in a crash: SIGTERM, SIGKILL a second later
    try:
        assert run.proc.wait(timeout=90) == 1, run.output()[-3000:]
        failed_after = time.monotonic() - stopped
        print(f"the update failed {failed_after:.1f} s after the API server stopped (bound 8 s)")
        assert failed_after < 30
        assert "the Kubernetes API server did not answer for" in run.output(), run.output()[-3000:]
    finally:
        cluster.start_apiserver()
    ok(Run(project, "up"))
    assert_settled(project, client, run.processes())
    assert (claim_uid(client), secret_key(client)) == (claim, key)

    # 5. An update killed while the engine rewrote the state file (the backend moves it to .bak, then writes
    #    the new one): the next `make up` puts the checkpoint before back and settles from there.
    project.set_path("resources.requests.cpu", "350m")
    run = Run(project, "up")
    orphans = run.kill_when(lambda: any(k == "updating" for k, _ in pending(project)))
    state = project.root.parent / "backend" / ".pulumi" / "stacks" / "langflow" / f"{project.stack}.json"
    # What CI met twice, as `failed to load checkpoint: EOF`: the state cut short, its metadata file empty.
    state.write_bytes(state.read_bytes()[:200])
    state.with_name(state.name + ".attrs").write_bytes(b"")
    output = ok(Run(project, "up"))
    assert "recovered: the stack's state file was left broken by an interrupted update" in output, output[-4000:]
    assert "it was cut short" in output and "its metadata file was cut short" in output
    assert_settled(project, client, orphans)
    deploy = client.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/langflow")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "350m"
    assert (claim_uid(client), secret_key(client)) == (claim, key)

    # 6. A destroy, killed at its first delete: the next `make destroy` finishes it, the data volume and
    #    the generated secret key stay, and a later `make up` runs on them.
    run = Run(project, "destroy")
    orphans = run.kill_when(lambda: any(k == "deleting" for k, _ in pending(project)))
    ok(Run(project, "destroy"))
    assert_settled(project, client, orphans, deployed=False)
    assert client.get_or_none(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/langflow") is None
    assert claim_uid(client) == claim
    ok(Run(project, "up"))
    assert_settled(project, client, [])
    assert (claim_uid(client), secret_key(client)) == (claim, key)
