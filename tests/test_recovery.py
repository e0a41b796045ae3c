"""Recovery from interrupted updates: the decisions (locks, pending operations), the process table,
the API server watch, and how StackReleases applies them, without Pulumi or a cluster.

The engine's side (a real kill, a real lock, real pending operations) is in
tests/integration/test_recovery_real.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from pulumi.automation._cmd import CommandResult
from pulumi.automation.errors import CommandError, ConcurrentUpdateError

from releases import history, processes
from releases.database import STOPPED_ANNOTATION, StackDatabase
from releases.history import ReleaseError
from releases.recovery import (
    repair_state_file, state_file,
    AUTONAMED, LockHolder, RecoveryPlan, hand_over_fields, holder_is_gone, lock_holders, lock_refusal,
    other_pulumi_managers, pending_operations, plan_recovery, recovery_summary, refresh_targets, rollout_status,
    settle_action, stack_outputs, state_field_manager, state_ids,
)
from releases.watch import ApiServerWatch
from releases.workflow import ReleaseFailed, StackReleases

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=timezone.utc)
# What the self-managed backend prints (pkg/backend/diy/lock.go), two holders.
LOCKED = ("error: the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end or "
          "delete the lock file with `pulumi cancel`.\n"
          "  file:///state/.pulumi/locks/organization/langflow/dev/a.json: created by root@ci-7 (pid 434) at "
          "2026-12-01T05:00:00Z\n"
          "  s3://bucket/.pulumi/locks/organization/langflow/dev/b.json: created by ann@laptop (pid 99) at "
          "2026-12-01T04:59:58.5+01:00")
STACK = "urn:pulumi:dev::langflow::pulumi:pulumi:Stack::langflow-dev"
PARENT = "urn:pulumi:dev::langflow::langflow:platform:Langflow"


def test_the_holders_of_a_lock_are_read_from_pulumi_s_message():
    first, second = lock_holders(LOCKED)
    assert (first.user, first.host, first.pid, first.since) == ("root", "ci-7", 434, NOW)
    assert first.where.endswith("/dev/a.json")
    assert (second.user, second.host, second.pid) == ("ann", "laptop", 99)
    assert second.since == datetime(2026, 12, 1, 3, 59, 58, 500000, tzinfo=timezone.utc)
    assert lock_holders("[409] Conflict: Another update is currently in progress.") == []


def holder(host: str = "vm", pid: int = 434, since: datetime = NOW) -> LockHolder:
    return LockHolder("root", host, pid, since, "file:///lock.json")


@pytest.mark.parametrize("running, started, host, gone", [
    (False, None, "vm", True),  # its process is gone
    (True, NOW - timedelta(minutes=5), "vm", False),  # still running: never cleared
    (True, NOW + timedelta(minutes=5), "vm", True),  # the pid now belongs to a later process
    (True, NOW + timedelta(seconds=1), "vm", False),  # within the clock's slack: the same process
    (False, None, "elsewhere", False),  # another host: never judged from here
])
def test_a_lock_is_stale_only_when_its_process_on_this_host_is_gone(running, started, host, gone):
    assert holder_is_gone(holder(host), host="vm", started=lambda pid: started, running=lambda pid: running) is gone


def test_a_live_lock_is_refused_naming_its_holder_and_pulumi_cancel():
    live = holder("somewhere-else", 434)
    text = lock_refusal("dev", [live], [])
    for said in ("stack dev is locked by root@somewhere-else (pid 434, since 2026-12-01 05:00:00 UTC",
                 "on another host", "never cleared", "pulumi cancel", "Nothing was changed"):
        assert said in text, text
    assert "backend names no holder" in lock_refusal("dev", [], [])


def test_processes_are_named_for_good_by_pid_and_start_time():
    own = processes.run_id(os.getpid())
    assert processes.run_alive(own)
    pid, _, stamp = own.partition("@")
    assert not processes.run_alive(f"{pid}@{int(stamp) - 500}")  # the same pid, an earlier process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not processes.running(child.pid) and processes.started_at(child.pid) is None


def test_marked_processes_are_found_and_ended(tmp_path, monkeypatch):
    child = subprocess.Popen(["sleep", "60"], env={**os.environ, processes.RUN_MARKER: f"1@1 {tmp_path}"})
    try:
        deadline = time.monotonic() + 10
        while child.pid not in processes.marked(processes.RUN_MARKER) and time.monotonic() < deadline:
            time.sleep(0.05)  # environ is readable once the exec is done
        assert processes.marked(processes.RUN_MARKER)[child.pid] == f"1@1 {tmp_path}"
        assert processes.children(os.getpid(), "sleep") == [child.pid]
        # A run of this project whose leader is gone left it: the next run ends it by its pid.
        releases = bare_releases(tmp_path, monkeypatch)
        actions = releases._end_orphans()
        assert actions == [f"ended 1 process(es) the interrupted run 1 left running (pids {child.pid})"]
        assert child.wait(timeout=10) is not None
    finally:
        child.kill()


def test_processes_of_another_project_or_a_live_run_are_left_alone(tmp_path, monkeypatch):
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, processes.RUN_MARKER: "1@1 /another/project"})
    live = subprocess.Popen(["sleep", "60"], env={**os.environ, processes.RUN_MARKER:
                                                  f"{processes.run_id(os.getpid())} {tmp_path}"})
    try:
        time.sleep(0.3)
        assert bare_releases(tmp_path, monkeypatch)._end_orphans() == []
        assert other.poll() is None and live.poll() is None
    finally:
        other.kill()
        live.kill()


def op(kind: str, type_: str, name: str, namespace: str = "langflow-dev", resource: str = "langflow") -> dict:
    urn = f"{PARENT}${type_}::{resource}"
    inputs = {"metadata": {"name": name, "namespace": namespace}} if type_.startswith("kubernetes:") else {"length": 24}
    return {"type": kind, "resource": {"urn": urn, "type": type_, "inputs": inputs}}


def test_pending_operations_name_their_kubernetes_objects():
    deployment = {"pending_operations": [op("creating", "kubernetes:core/v1:Service", "langflow"),
                                         op("updating", "kubernetes:apps/v1:Deployment", "langflow"),
                                         op("creating", "kubernetes:networking.k8s.io/v1:Ingress", "web", resource="web"),
                                         op("creating", "random:index/randomBytes:RandomBytes", "", resource="key")]}
    service, deploy, ingress, key = pending_operations(deployment)
    assert service.kubernetes_object == ("v1", "Service", "langflow-dev", "langflow")
    assert deploy.kubernetes_object == ("apps/v1", "Deployment", "langflow-dev", "langflow")
    assert ingress.kubernetes_object == ("networking.k8s.io/v1", "Ingress", "langflow-dev", "web")
    assert key.kubernetes_object is None and key.describe() == "RandomBytes key"
    assert service.describe() == "Service langflow langflow-dev/langflow"
    assert pending_operations({}) == []


def test_each_pending_create_gets_the_action_that_keeps_everything():
    ops = pending_operations({"pending_operations": [
        op("creating", "kubernetes:core/v1:Service", "langflow", resource="adopted"),
        op("creating", "kubernetes:apps/v1:Deployment", "langflow", resource="missing"),
        op("creating", "kubernetes:core/v1:Secret", "langflow-credentials-1a2b3c4d", resource="autonamed"),
        op("creating", "kubernetes:core/v1:PersistentVolumeClaim", "data-1a2b3c4d", resource="data"),
        op("creating", "kubernetes:core/v1:ConfigMap", "flows-5e6f", resource="replaced"),
        op("creating", "kubernetes:core/v1:ConfigMap", "tool-1111", resource="same"),
        op("creating", "random:index/randomPassword:RandomPassword", "", resource="password"),
        op("updating", "kubernetes:apps/v1:Deployment", "langflow", resource="updated"),
    ]})
    live = {"adopted": {}, "autonamed": {"annotations": {AUTONAMED: "true"}},
            "data": {"annotations": {AUTONAMED: "true"}}, "replaced": {"annotations": {AUTONAMED: "true"}},
            "same": {"annotations": {AUTONAMED: "true"}}}
    in_state = {f"{PARENT}$kubernetes:core/v1:ConfigMap::replaced": "langflow-dev/flows-0000",
                f"{PARENT}$kubernetes:core/v1:ConfigMap::same": "langflow-dev/tool-1111",
                f"{PARENT}$kubernetes:apps/v1:Deployment::updated": "langflow-dev/langflow"}
    plan = plan_recovery(ops, in_state, lambda o: live.get(o.name))
    assert [o.name for o in plan.adopt] == ["adopted"]
    # A leftover under a generated name is deleted, never one that may hold data nor the one the state holds.
    assert [o.name for o in plan.remove] == ["autonamed", "replaced"]
    assert {o.name: why for o, why in plan.clear} == {
        "missing": "it does not exist in the cluster",
        "data": "no update can take it over (the provider named it), and it may hold data, so it is kept: delete it "
                "by hand once you know it holds nothing",
        "same": "the state holds the resource, and the update settles it",
        "password": "nothing outside the state holds it"}
    # What the state holds once adopted, or held already, gets the fields an interrupted create applied.
    assert [o.name for o in plan.hand_over] == ["adopted", "same"]
    actions = plan.actions()
    assert len(actions) == 8  # the update in flight is the first refresh's, not the plan's
    assert actions[0].startswith("adopt Service adopted langflow-dev/langflow: the interrupted run created it")
    assert "handed over to the adopting one, so that later changes meet no field conflict" in actions[0]
    assert actions[1].startswith("delete Secret autonamed langflow-dev/langflow-credentials-1a2b3c4d: ")
    assert actions[-1] == ("hand the fields another Pulumi field manager applied to ConfigMap same "
                           "langflow-dev/tool-1111, if any, over to the one the state records")
    assert settle_action(ops[-1]) == "refresh Deployment updated langflow-dev/langflow, interrupted while updating"
    assert not RecoveryPlan() and plan
    # A refresh names the stack and what the state holds only (it refuses the others).
    assert refresh_targets(ops, {STACK: "", **in_state}) == [
        STACK, f"{PARENT}$kubernetes:core/v1:ConfigMap::replaced", f"{PARENT}$kubernetes:core/v1:ConfigMap::same",
        f"{PARENT}$kubernetes:apps/v1:Deployment::updated"]
    assert refresh_targets(ops, {}) == []


def applied(manager: str, fields: dict, operation: str = "Apply", **more) -> dict:
    return {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "time": "2026-12-01T05:00:00Z",
            "fieldsType": "FieldsV1", "fieldsV1": fields, **more}


CONTAINER = 'k:{"name":"langflow"}'
KILLED = applied("pulumi-kubernetes-0a1b2c3d", {
    "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:old": {}}},
    "f:spec": {"f:template": {"f:spec": {"f:containers": {CONTAINER: {".": {}, "f:image": {}, "f:name": {}}}}}}})
ADOPTING = applied("pulumi-kubernetes-4e5f6a7b", {
    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {CONTAINER: {".": {}, "f:image": {}}}}}}})
STATUS = applied("kube-controller-manager", {"f:status": {"f:replicas": {}}}, "Update", subresource="status")
EDITED = applied("kubectl-edit", {"f:spec": {"f:paused": {}}}, "Update")


def test_the_fields_an_interrupted_create_applied_are_handed_over_to_the_manager_the_state_records():
    # The killed run's manager and the adopting one's both hold the image: the next image change would conflict.
    entries = [KILLED, STATUS, ADOPTING, EDITED]
    assert other_pulumi_managers(entries, ADOPTING["manager"]) == [KILLED["manager"]]
    handed = hand_over_fields(entries, ADOPTING["manager"])
    # The adopting manager holds the union (what only the killed run set too: its next apply removes that), the
    # other managers' entries stay as they are, and no other Pulumi manager is left.
    assert handed == [STATUS, {**ADOPTING, "fieldsV1": {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:old": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            CONTAINER: {".": {}, "f:image": {}, "f:name": {}}}}}}}}, EDITED]
    assert other_pulumi_managers(handed, ADOPTING["manager"]) == []
    assert hand_over_fields(handed, ADOPTING["manager"]) is None
    assert entries == [KILLED, STATUS, ADOPTING, EDITED], "the entries read are left as they were"
    # A manager that has no entry of its own takes the other one's, renamed.
    assert hand_over_fields([KILLED, STATUS], "pulumi-kubernetes-4e5f6a7b") == [
        STATUS, {**KILLED, "manager": "pulumi-kubernetes-4e5f6a7b"}]
    # Nothing to hand over: only the state's manager, other tools' managers, a Pulumi manager's status entry.
    assert hand_over_fields([ADOPTING, STATUS, EDITED], ADOPTING["manager"]) is None
    assert hand_over_fields([ADOPTING, {**KILLED, "subresource": "status"}], ADOPTING["manager"]) is None
    assert hand_over_fields([], ADOPTING["manager"]) is None


def test_the_state_records_each_resource_s_field_manager():
    deployment = {"resources": [{"urn": "u", "outputs": {"__fieldManager": "pulumi-kubernetes-4e5f6a7b"}},
                                {"urn": "r", "outputs": {"length": 24}}]}
    assert state_field_manager(deployment, "u") == "pulumi-kubernetes-4e5f6a7b"
    assert state_field_manager(deployment, "r") is None and state_field_manager(deployment, "x") is None


def test_recovery_updates_are_no_releases():
    update = history.Update(1, "update", NOW, "succeeded", "recovery: adopt what an interrupted update created", {})
    assert not update.is_release
    assert history.Update(2, "update", NOW, "succeeded", "make up\nrecovered first: x", {}).is_release
    assert recovery_summary(["a", "b"]) == "recovered first: a; b" and recovery_summary([]) == ""


def test_state_ids_and_stack_outputs():
    assert state_ids({"resources": [{"urn": "u", "id": "ns/n"}, {"urn": "s"}]}) == {"u": "ns/n", "s": ""}
    deployment = {"resources": [{"urn": STACK, "type": "pulumi:pulumi:Stack", "outputs": {"backups": {"engine": "x"}}},
                                {"urn": "u", "type": "kubernetes:core/v1:Service", "outputs": {"spec": {}}}]}
    assert stack_outputs(deployment) == {"backups": {"engine": "x"}} and stack_outputs({}) == {}


def test_the_watch_stops_an_update_once_the_api_server_was_silent_too_long():
    interrupted = []
    with ApiServerWatch(lambda: False, limit=0.3, interval=0.05, interrupt=lambda: interrupted.append(1)) as watch:
        time.sleep(0.8)
    assert interrupted == [1] and watch.silent_for >= 0.3
    with ApiServerWatch(lambda: True, limit=0.1, interval=0.02, interrupt=lambda: interrupted.append(2)) as watch:
        time.sleep(0.3)
    assert interrupted == [1] and watch.silent_for is None


class FakeStack:
    def __init__(self):
        self.cancelled = 0

    def cancel(self):
        self.cancelled += 1


def bare_releases(project_dir: Path, monkeypatch, probe=lambda: True) -> StackReleases:
    """A StackReleases without a Pulumi workspace: for the parts that do not need one."""
    releases = StackReleases.__new__(StackReleases)
    releases.project_dir, releases.name, releases.out = project_dir.resolve(), "dev", lambda line: None
    releases.api_outage_seconds, releases.recovered, releases.stack = 60, [], FakeStack()
    releases._api_server_probe = lambda: probe
    monkeypatch.setenv(processes.RUN_MARKER, f"{processes.run_id(os.getpid())} {releases.project_dir}")
    return releases


def locked_by(pid: int, host: str, since: datetime) -> ConcurrentUpdateError:
    text = (f"the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete "
            f"the lock file with `pulumi cancel`.\n  file:///b/.pulumi/locks/o/p/dev/x.json: created by root@{host} "
            f"(pid {pid}) at {since.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return ConcurrentUpdateError(CommandResult(stdout="", stderr=text, code=255))


def test_a_stale_lock_is_cleared_with_pulumi_cancel_and_the_update_runs_once_more(tmp_path, monkeypatch):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    releases, calls = bare_releases(tmp_path, monkeypatch), []

    def update():
        calls.append(1)
        if len(calls) == 1:
            raise locked_by(dead.pid, socket.gethostname(), datetime.now(timezone.utc))
        return "done"
    assert releases._run(update) == "done"
    assert releases.stack.cancelled == 1 and len(calls) == 2
    assert releases.recovered[0].startswith(f"cleared the stale lock of root@{socket.gethostname()} (pid {dead.pid}")


def test_a_live_lock_or_a_second_lock_is_never_cleared(tmp_path, monkeypatch):
    releases = bare_releases(tmp_path, monkeypatch)
    started = processes.started_at(os.getpid())

    def live():
        raise locked_by(os.getpid(), socket.gethostname(), started)
    with pytest.raises(ReleaseError, match=r"is locked by .*running on this host.*pulumi cancel"):
        releases._run(live)

    def elsewhere():
        raise locked_by(1, "another-host", started)
    with pytest.raises(ReleaseError, match="on another host"):
        releases._run(elsewhere)
    assert releases.stack.cancelled == 0 and releases.recovered == []


def test_a_failure_while_the_api_server_is_silent_says_to_run_the_command_again(tmp_path, monkeypatch):
    releases = bare_releases(tmp_path, monkeypatch, probe=lambda: False)

    def failing():
        raise CommandError(CommandResult(stdout="", stderr="error: update failed: connection refused", code=255))
    with pytest.raises(ReleaseFailed, match="(?s)connection refused.*API server does not answer.*run the same command"):
        releases._run(failing)


class FakeApps:
    """The Deployment and its scale, as the AppsV1Api calls StackDatabase makes see them."""

    def __init__(self, annotations: dict):
        self.annotations, self.replicas = dict(annotations), 0

    def read_namespaced_deployment(self, name, namespace, **_):
        return SimpleNamespace(metadata=SimpleNamespace(annotations=dict(self.annotations)))

    def patch_namespaced_deployment(self, name, namespace, body):
        for key, value in body["metadata"]["annotations"].items():
            if value is None:
                self.annotations.pop(key, None)
            else:
                self.annotations[key] = value

    def patch_namespaced_deployment_scale(self, name, namespace, body):
        self.replicas = body["spec"]["replicas"]


def stopped_database(annotations: dict, jobs: list) -> StackDatabase:
    database = StackDatabase.__new__(StackDatabase)
    database.backups = {"restore_template": "langflow-restore"}
    database.namespace, database.deployment, database.replicas, database.out = "langflow-dev", "langflow", None, print
    database.apps = FakeApps(annotations)
    database.batch = SimpleNamespace(list_namespaced_job=lambda namespace: SimpleNamespace(items=[
        SimpleNamespace(metadata=SimpleNamespace(name=name), status=SimpleNamespace(active=active))
        for name, active in jobs]))
    return database


def test_langflow_stopped_by_an_interrupted_restore_is_started_again():
    database = stopped_database({STOPPED_ANNOTATION: "2", "other": "x"}, [("langflow-restore-20261201", None)])
    assert database.start_after_interrupted_restore().startswith("started Langflow again with 2 pod(s)")
    assert database.apps.replicas == 2 and database.apps.annotations == {"other": "x"}
    assert database.start_after_interrupted_restore() is None  # nothing left to do


def test_langflow_stays_stopped_while_a_restore_job_still_runs():
    database = stopped_database({STOPPED_ANNOTATION: "1"}, [("langflow-restore-20261201", 1), ("unrelated", 1)])
    with pytest.raises(ReleaseError, match="restore Job langflow-restore-20261201 still runs"):
        database.start_after_interrupted_restore()
    assert database.apps.replicas == 0 and STOPPED_ANNOTATION in database.apps.annotations


class RecordingStack:
    """The Automation API calls recover() makes, in order; the state it exports, step by step."""

    def __init__(self, deployments: list[dict], refresh_error: Exception | None = None):
        self.deployments, self.refresh_error, self.calls = deployments, refresh_error, []
        # An update runs the CLI through the workspace's command (the Automation API's up, minus its summary).
        self.name = "dev"
        self.workspace = SimpleNamespace(work_dir=".", pulumi_command=SimpleNamespace(run=self._cli))

    def _cli(self, args, cwd, env, on_output=None):
        assert args[:3] == ["up", "--yes", "--skip-preview"] and args[-2:] == ["--stack", "dev"]
        self.calls.append(("up", [v for k, v in zip(args, args[1:]) if k == "--target"], args[args.index("--message") + 1]))

    def export_stack(self):
        return SimpleNamespace(deployment=self.deployments[0] if len(self.deployments) == 1 else self.deployments.pop(0))

    def refresh(self, **kwargs):
        self.calls.append(("refresh", kwargs["target"], kwargs["clear_pending_creates"]))
        if self.refresh_error:
            raise self.refresh_error

    def cancel(self):
        self.calls.append(("cancel",))


def recovering(tmp_path, monkeypatch, deployments, refresh_error=None):
    releases = bare_releases(tmp_path, monkeypatch)
    releases.stack = RecordingStack(deployments, refresh_error)
    live = {"langflow": {}, "langflow-credentials-1a2b": {"annotations": {AUTONAMED: "true"}}}
    releases._live_metadata = lambda op: live.get(op.kubernetes_object[3])
    releases._kubernetes_resource = lambda op: SimpleNamespace(
        delete=lambda name, namespace: releases.stack.calls.append(("delete", namespace, name)),
        get=lambda name, namespace: SimpleNamespace(to_dict=deployment))
    return releases


INTERRUPTED = {
    "resources": [{"urn": STACK, "id": ""}, {"urn": f"{PARENT}$kubernetes:apps/v1:Deployment::langflow",
                                             "id": "langflow-dev/langflow"}],
    "pending_operations": [op("creating", "kubernetes:core/v1:Service", "langflow"),
                           op("creating", "kubernetes:core/v1:Secret", "langflow-credentials-1a2b", resource="creds"),
                           op("updating", "kubernetes:apps/v1:Deployment", "langflow")]}


def test_recovery_takes_the_lock_first_then_adopts_deletes_and_clears(tmp_path, monkeypatch):
    after_refresh = {**INTERRUPTED, "pending_operations": INTERRUPTED["pending_operations"][:2]}
    releases = recovering(tmp_path, monkeypatch, [INTERRUPTED, INTERRUPTED, after_refresh, after_refresh])
    releases.recover()
    service, deploy = f"{PARENT}$kubernetes:core/v1:Service::langflow", f"{PARENT}$kubernetes:apps/v1:Deployment::langflow"
    assert releases.stack.calls == [
        ("refresh", [STACK, deploy], False),  # takes the lock; settles the update in flight
        ("up", [service], "recovery: adopt what an interrupted update created"),
        ("delete", "langflow-dev", "langflow-credentials-1a2b"),
        ("refresh", [STACK], True)]
    assert [a.split(":")[0] for a in releases.recovered] == [
        "refresh Deployment langflow langflow-dev/langflow, interrupted while updating",
        "Deployment langflow-dev/langflow finished the rollout the interrupted update started",
        "adopt Service langflow langflow-dev/langflow", "delete Secret creds langflow-dev/langflow-credentials-1a2b"]


class LiveService:
    """A Service as the API server keeps it: managedFields, a resourceVersion each write moves on, and JSON patches
    with a test of it (a controller writing in between makes the first one fail)."""

    def __init__(self, managed_fields: list[dict], calls: list, written_meanwhile: int = 0, taken: bool = True):
        self.metadata = {"name": "langflow", "namespace": "langflow-dev", "resourceVersion": "7",
                         "managedFields": managed_fields}
        self.calls, self.written_meanwhile, self.taken = calls, written_meanwhile, taken

    def get(self, name, namespace):
        return SimpleNamespace(to_dict=lambda: {"metadata": dict(self.metadata)})

    def patch(self, name, namespace, body, content_type):
        from kubernetes.client.rest import ApiException
        from kubernetes.dynamic.exceptions import UnprocessibleEntityError

        assert content_type == "application/json-patch+json"
        self.calls.append(("patch", namespace, name, [op["path"] for op in body]))
        if self.written_meanwhile:
            self.written_meanwhile -= 1
            self.metadata["resourceVersion"] = str(int(self.metadata["resourceVersion"]) + 1)
        test, replace = body
        if test["value"] != self.metadata["resourceVersion"]:
            raise UnprocessibleEntityError(ApiException(status=422, reason="test failed"))
        if self.taken:
            self.metadata["managedFields"] = replace["value"]
        return self.get(name, namespace)


def handing_over(tmp_path, monkeypatch, service: LiveService):
    """recover() of INTERRUPTED, where the adopting update records the Service with its own field manager."""
    after_refresh = {**INTERRUPTED, "pending_operations": INTERRUPTED["pending_operations"][:2]}
    service_state = {"urn": f"{PARENT}$kubernetes:core/v1:Service::langflow", "id": "langflow-dev/langflow",
                     "outputs": {"__fieldManager": ADOPTING["manager"]}}
    adopted = {**after_refresh, "resources": [*after_refresh["resources"], service_state]}
    releases = recovering(tmp_path, monkeypatch, [INTERRUPTED, INTERRUPTED, after_refresh, adopted])
    service.calls = releases.stack.calls
    rollout = releases._kubernetes_resource
    releases._kubernetes_resource = lambda op: service if op.kubernetes_object[1] == "Service" else rollout(op)
    return releases


def test_recovery_hands_the_fields_of_the_interrupted_create_over_after_the_adoption(tmp_path, monkeypatch):
    service = LiveService([KILLED, STATUS, ADOPTING], [], written_meanwhile=1)
    releases = handing_over(tmp_path, monkeypatch, service)
    releases.recover()
    patch = ("patch", "langflow-dev", "langflow", ["/metadata/resourceVersion", "/metadata/managedFields"])
    assert [call[0] for call in releases.stack.calls] == ["refresh", "up", "patch", "patch", "delete", "refresh"]
    assert releases.stack.calls[2:4] == [patch, patch], "written in between: read again and patched again"
    assert other_pulumi_managers(service.metadata["managedFields"], ADOPTING["manager"]) == []
    assert STATUS in service.metadata["managedFields"]
    assert (f"Service langflow-dev/langflow: handed the fields of field manager(s) {KILLED['manager']} over to "
            f"{ADOPTING['manager']}, the one the state records") in releases.recovered


def test_a_hand_over_the_api_server_did_not_take_fails_the_recovery_before_it_clears_anything(tmp_path, monkeypatch):
    # The API server keeps the managedFields it had when it cannot decode the ones sent, and says nothing.
    service = LiveService([KILLED, STATUS, ADOPTING], [], taken=False)
    releases = handing_over(tmp_path, monkeypatch, service)
    with pytest.raises(ReleaseFailed, match="could not be handed over to field manager pulumi-kubernetes-4e5f6a7b"):
        releases.recover()
    assert [call[0] for call in releases.stack.calls] == ["refresh", "up", "patch"]


def test_recovery_under_a_live_lock_changes_nothing(tmp_path, monkeypatch):
    started = processes.started_at(os.getpid())
    live_lock = locked_by(os.getpid(), socket.gethostname(), started)
    releases = recovering(tmp_path, monkeypatch, [INTERRUPTED], refresh_error=live_lock)
    with pytest.raises(ReleaseError, match="running on this host"):
        releases.recover()
    assert [call[0] for call in releases.stack.calls] == ["refresh"] and releases.recovered == []


def deployment(generation=2, observed=2, replicas=2, updated=2, total=2, available=2, conditions=()):
    return {"kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available, "conditions": list(conditions)}}


@pytest.mark.parametrize("workload, waiting", [
    (deployment(), None),
    (deployment(observed=1), "the controller to see the new spec"),
    (deployment(updated=1), "1 of 2 pods updated"),
    (deployment(total=3), "1 old pod(s) to end"),
    (deployment(available=1), "1 of 2 updated pods available"),
    (deployment(updated=1, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded",
                                        "message": "ReplicaSet langflow-1 has timed out progressing."}]),
     "failed: ReplicaSet langflow-1 has timed out progressing."),
    ({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "a"}}, None),
    ({"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 2, "readyReplicas": 1, "updatedReplicas": 0, "currentRevision": "a",
                 "updateRevision": "b"}}, "0 of 1 pods updated"),
])
def test_a_rollout_is_done_as_kubectl_rollout_status_judges_it(workload, waiting):
    assert rollout_status(workload) == waiting


def test_a_rollout_the_interrupted_update_left_stuck_fails_the_command(tmp_path, monkeypatch):
    stuck = deployment(updated=1, conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}])
    releases = recovering(tmp_path, monkeypatch, [INTERRUPTED])
    releases._kubernetes_resource = lambda op: SimpleNamespace(get=lambda name, namespace: SimpleNamespace(
        to_dict=lambda: stuck))
    updating = pending_operations(INTERRUPTED)[2]
    with pytest.raises(ReleaseFailed, match=r"rollout of Deployment langflow-dev/langflow did not complete "
                                            r"\(its progress deadline passed\).*make rollback"):
        releases._await_rollout(updating)


@pytest.mark.parametrize("bound", ["0", "-5", "soon", "nan"])
def test_a_bad_api_outage_bound_is_refused_naming_the_option(bound, capsys):
    from releases.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["up", "--stack", "dev", "--api-outage-seconds", bound])
    assert exit_.value.code == 2
    assert f"--api-outage-seconds: {bound!r} is not a number of seconds above 0" in capsys.readouterr().err


def test_a_state_file_a_kill_cut_short_is_restored_from_the_checkpoint_before(tmp_path: Path):
    folder = tmp_path / ".pulumi" / "stacks" / "langflow"
    folder.mkdir(parents=True)
    path = state_file(f"file://{tmp_path}", "langflow", "dev")
    assert path is None  # no stack yet: nothing to repair
    (folder / "dev.json.bak").write_text('{"checkpoint": {"latest": {"resources": []}}}')
    (folder / "dev.json").write_text('{"checkpoint": {"lat')  # the engine was killed while writing it
    path = state_file(f"file://{tmp_path}", "langflow", "dev")
    said = repair_state_file(path, now=datetime(2026, 12, 3, 8, 0, 0))
    assert said and "it was cut short (kept as dev.json.cut-20261203080000)" in said
    assert path.read_text() == (folder / "dev.json.bak").read_text()
    assert (folder / "dev.json.cut-20261203080000").read_text() == '{"checkpoint": {"lat'
    assert repair_state_file(path) is None  # whole again: left alone
    # Renamed to .bak and never written again: the .bak is put back.
    path.unlink()
    assert "it was missing" in repair_state_file(state_file(f"file://{tmp_path}", "langflow", "dev"))
    # The state whole, its metadata file empty (what CI met): set aside, the state reads without it.
    (folder / "dev.json.attrs").write_text("")
    said = repair_state_file(path, now=datetime(2026, 12, 3, 9, 0, 0))
    assert said and "metadata file was cut short (kept as dev.json.attrs.cut-20261203090000)" in said
    assert not (folder / "dev.json.attrs").exists() and path.read_text() == (folder / "dev.json.bak").read_text()
    (folder / "dev.json.attrs").write_text('{"user.cache_control": ""}')
    assert repair_state_file(path) is None  # a readable one is left alone
    # No readable checkpoint before it: nothing to offer, Pulumi's own error stands.
    path.write_text("")
    (folder / "dev.json.bak").write_text("")
    assert repair_state_file(path) is None and path.read_text() == ""
    assert state_file("s3://bucket", "langflow", "dev") is None
