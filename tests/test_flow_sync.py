"""The flow sync (flows.update: sync): what it plans, the objects it declares, and that a flow-only change
leaves Langflow's pods alone. The sync against a real Langflow is tests/langflow/test_flow_sync_real.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from components.flow_sync import spec
from flowsync import SCRIPT
from flowsync.sync import Langflow, Ledger, SyncError, plan, read_folder, sync
from settings import ConfigError, load_settings
from settings.loader import parse_config
from settings.stack_file import stack_values as project_stack_values
from tests.program import run_program, stack_values

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT, JOB, CONFIG_MAP = "kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:core/v1:ConfigMap"


def flow(name: str, endpoint: str, text: str = "v1", **extra) -> dict:
    return {"name": name, "endpoint_name": endpoint, "description": text, "data": {"nodes": [], "edges": []}, **extra}


# --- what a sync plans ----------------------------------------------------------------------------

def test_new_flows_are_created_changed_ones_updated_and_equal_ones_left_alone():
    desired = {"a": flow("A", "a"), "b": flow("B", "b", "v2"), "c": flow("C", "c")}
    existing = [{"id": "1", **flow("A", "a")}, {"id": "2", **flow("B", "b")}]
    changes = {c.endpoint: c.action for c in plan(desired, existing, set()).changes}
    assert changes == {"a": "unchanged", "b": "updated", "c": "created"}


def test_only_flows_the_ledger_holds_are_deleted():
    existing = [{"id": "1", **flow("A", "a")}, {"id": "2", **flow("Gone", "gone")},
                {"id": "3", **flow("Made in the UI", "mine")}, {"id": "4", "name": "Starter", "endpoint_name": None}]
    current = plan({"a": flow("A", "a")}, existing, managed={"a", "gone", "never-there"})
    assert [(c.action, c.endpoint, c.existing["id"]) for c in current.of("deleted")] == [("deleted", "gone", "2")]
    assert {c.endpoint for c in current.changes} == {"a", "gone"}


def test_a_second_plan_of_the_same_flows_changes_nothing():
    desired = {"a": flow("A", "a")}
    current = plan(desired, [{"id": "1", **flow("A", "a"), "icon": "x", "updated_at": "now"}], {"a"})
    assert not current.changed and current.changes[0].line().startswith("unchanged a")


def test_a_flow_without_an_endpoint_name_cannot_be_synced(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"name": "A", "data": {}}))
    with pytest.raises(SyncError, match="a.json: a synced flow needs an 'endpoint_name'"):
        read_folder(tmp_path)


def test_credentials_come_from_the_environment_and_an_api_key_needs_no_login():
    langflow = Langflow("http://127.0.0.1:9", {"LANGFLOW_API_KEY": "sk-secret"})
    assert langflow.headers == {"x-api-key": "sk-secret"}


def test_the_script_needs_only_the_standard_library():
    imported = {line.split()[1].split(".")[0] for line in SCRIPT.read_text().splitlines()
                if line.startswith(("import ", "from ")) and not line.startswith("from __future__")}
    assert imported <= {"argparse", "gzip", "json", "os", "sys", "time", "urllib", "dataclasses", "pathlib", "typing"}


# --- config -------------------------------------------------------------------------------------

def test_sync_is_the_default_and_restart_is_the_other_choice():
    assert parse_config({}).flows.update == "sync"
    assert parse_config({"flows": {"update": "restart"}}).flows.update == "restart"
    with pytest.raises(ConfigError, match="langflow:flows.update"):
        load_settings({"flows": {"update": "reload"}}, ROOT)


def test_synced_flows_are_found_by_endpoint_name_so_each_needs_one(tmp_path):
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    document = json.loads((tmp_path / "flows" / "echo.json").read_text())
    document.pop("endpoint_name")
    (tmp_path / "flows" / "echo.json").write_text(json.dumps(document))
    values = project_stack_values(ROOT, "dev")
    with pytest.raises(ConfigError) as error:
        load_settings(values, tmp_path)
    assert "flows/echo.json: langflow:flows.update is sync" in str(error.value)
    assert "set langflow:flows.update: restart" in str(error.value)
    load_settings({**values, "flows": {**values["flows"], "update": "restart"}}, tmp_path)


def test_a_default_flow_named_by_id_is_refused_when_synced():
    values = project_stack_values(ROOT, "dev")
    flow_id = json.loads((ROOT / "flows" / "echo.json").read_text())["id"]
    with pytest.raises(ConfigError, match="langflow:flows.default_flow: .* is an id, which a synced flow does not keep"):
        load_settings({**values, "flows": {**values["flows"], "default_flow": flow_id}}, ROOT)


# --- the objects, and what a flow-only change touches ---------------------------------------------

def changed_flows(tmp_path: Path, stack: str, values=None):
    values = values or stack_values(stack)
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    before = run_program(values, stack, project_dir=tmp_path)
    document = json.loads((tmp_path / "flows" / "echo.json").read_text())
    document["description"] = "changed"
    (tmp_path / "flows" / "echo.json").write_text(json.dumps(document))
    return before, run_program(values, stack, project_dir=tmp_path)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_flow_only_change_leaves_the_pods_alone_and_runs_a_new_sync(tmp_path, stack):
    before, after = changed_flows(tmp_path, stack)
    assert before.error is None and after.error is None
    # Langflow's Deployment (and on PostgreSQL its init Job) stay byte for byte as they were.
    assert json.dumps(before.named(DEPLOYMENT, "langflow").inputs, sort_keys=True) == \
        json.dumps(after.named(DEPLOYMENT, "langflow").inputs, sort_keys=True)
    if stack == "prod":
        init = lambda run: json.dumps(run.named(JOB, "langflow-init").inputs, sort_keys=True)  # noqa: E731
        assert init(before) == init(after)
    # A new sync Job, named after the new revision, with the new files.
    job = lambda run: run.named(JOB, "langflow-flow-sync-job").inputs  # noqa: E731
    assert job(before)["metadata"]["name"] != job(after)["metadata"]["name"]
    files = lambda run: run.named(CONFIG_MAP, "langflow-flow-sync-files").inputs["data"]["echo.json"]  # noqa: E731
    assert json.loads(files(after))["description"] == "changed" != json.loads(files(before))["description"]
    live = lambda run: run.named(CONFIG_MAP, "langflow-flow-sync-live").inputs["metadata"]  # noqa: E731
    assert live(before)["name"] == live(after)["name"] == "langflow-flows"
    assert live(before)["annotations"][spec.REVISION_ANNOTATION] != live(after)["annotations"][spec.REVISION_ANNOTATION]
    assert after.outputs["flows_revision"].value["sha256"] == live(after)["annotations"][spec.REVISION_ANNOTATION]


def test_an_image_change_still_rolls_the_pods():
    values = stack_values("dev")
    newer = {**values, "image": {**values["image"], "tag": "1.13.0"}}
    template = lambda run: run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]  # noqa: E731
    assert template(run_program(values, "dev")) != template(run_program(newer, "dev"))


def test_the_sync_runs_after_langflow_serves_and_the_pods_load_only_what_was_synced():
    run = run_program(stack_values("prod"), "prod")
    names = lambda options: {getattr(d, "_name", None) for d in options.depends_on}  # noqa: E731
    job_options = run.options[(JOB, "langflow-flow-sync-job")]
    assert names(job_options) == {"langflow", "langflow-flow-sync-files"} and job_options.delete_before_replace
    live = run.options[(CONFIG_MAP, "langflow-flow-sync-live")]
    assert live.delete_before_replace is True and names(live) == {"langflow-flow-sync-job"}
    job = run.named(JOB, "langflow-flow-sync-job").inputs
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["command"][:4] == ["python", "/flow-sync/flowsync.py", "--url", "http://langflow.langflow.svc:7860"]
    # The password by reference to the stack's Secret; nothing secret in the command or the ConfigMap.
    env = {e["name"]: e for e in container["env"]}
    assert env["LANGFLOW_SUPERUSER_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "LANGFLOW_SUPERUSER_PASSWORD"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    files = run.named(CONFIG_MAP, "langflow-flow-sync-files").inputs["data"]
    assert set(files) == {"echo.json", spec.SCRIPT_KEY} and files[spec.SCRIPT_KEY] == SCRIPT.read_text()


def test_with_flows_update_restart_there_is_no_sync():
    values = {**stack_values("dev"), "flows": {**stack_values("dev")["flows"], "update": "restart"}}
    run = run_program(values, "dev")
    assert all("flow-sync" not in r.name for r in run.resources) and "flows_revision" not in run.outputs


# --- a whole sync, against a stand-in for Langflow's API (the real one: tests/langflow) -----------

class FakeLangflow:
    """Langflow's flows and variables as the sync sees them; `fail_build` / `fail_update` name endpoints."""

    def __init__(self, flows=(), fail_build=(), fail_update=()):
        self.store = {str(i): {"id": str(i), **f} for i, f in enumerate(flows)}
        self.ledger_value, self.calls = None, []
        self.fail_build, self.fail_update = set(fail_build), set(fail_update)

    def flows(self):
        return [dict(f) for f in self.store.values()]

    def create(self, document):
        self.calls.append(("create", document.get("endpoint_name")))
        flow_id = f"new-{len(self.calls)}"
        self.store[flow_id] = {"id": flow_id, **synced(document)}
        return self.store[flow_id]

    def update(self, flow_id, document):
        self.calls.append(("update", document.get("endpoint_name")))
        if document.get("endpoint_name") in self.fail_update:
            raise SyncError(f"PATCH /api/v1/flows/{flow_id}: HTTP 500: boom")
        self.store[flow_id] = {"id": flow_id, **synced(document)}

    def delete(self, flow_id):
        self.calls.append(("delete", self.store[flow_id].get("endpoint_name")))
        del self.store[flow_id]

    def build(self, flow_id):
        if any(self.store[flow_id]["name"].startswith(name) for name in self.fail_build):
            raise SyncError("Error building Component Chat Output: broken on purpose")

    def ledger(self):
        return self.ledger_value or Ledger()

    def record(self, ledger, flows, revision):
        self.calls.append(("record", tuple(sorted(flows))))
        self.ledger_value = Ledger("variable", flows, revision)
        return self.ledger_value

    def served(self):
        return {f["endpoint_name"]: f["description"] for f in self.store.values() if f.get("endpoint_name")}


def synced(document):
    return {k: document[k] for k in ("name", "description", "data", "endpoint_name") if k in document}


def test_a_sync_applies_records_and_a_second_one_changes_nothing():
    langflow, lines = FakeLangflow([flow("A", "a"), flow("Gone", "gone"), flow("Mine", "mine")]), []
    langflow.ledger_value = Ledger("variable", frozenset({"a", "gone"}), "r0")
    sync(langflow, {"a": flow("A", "a", "v2"), "b": flow("B", "b")}, "r1", lines.append)
    assert langflow.served() == {"a": "v2", "b": "v1", "mine": "v1"}
    assert langflow.ledger_value == Ledger("variable", frozenset({"a", "b"}), "r1")
    assert lines[-1] == "flows revision r1: 1 created, 1 updated, 1 deleted"
    langflow.calls.clear()
    sync(langflow, {"a": flow("A", "a", "v2"), "b": flow("B", "b")}, "r1", lines.append)
    assert langflow.calls == [] and lines[-1] == "flows revision r1: no changes (2 flows unchanged)"


def test_a_flow_that_does_not_build_switches_nothing():
    langflow = FakeLangflow([flow("A", "a")], fail_build={"B [sync check"})
    with pytest.raises(SyncError) as error:
        sync(langflow, {"a": flow("A", "a", "v2"), "b": flow("B", "b")}, "r1", print)
    assert "Langflow could not build b: Error building Component Chat Output" in str(error.value)
    assert "Nothing was switched" in str(error.value)
    assert langflow.served() == {"a": "v1"} and not any(c[0] == "update" for c in langflow.calls)
    assert len(langflow.store) == 1  # the temporary flows are gone


def test_a_sync_that_fails_half_way_undoes_what_it_applied():
    langflow = FakeLangflow([flow("A", "a"), flow("C", "c")], fail_update={"c"})
    with pytest.raises(SyncError, match="HTTP 500: boom. What this sync had applied was undone"):
        sync(langflow, {"a": flow("A", "a", "v2"), "b": flow("B", "b"), "c": flow("C", "c", "v2")}, "r1", print)
    assert langflow.served() == {"a": "v1", "c": "v1"}
    # The ledger already named every flow the sync might have left, before it applied any.
    assert langflow.ledger_value.flows == {"a", "b", "c"}
