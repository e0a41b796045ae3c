"""Both stack programs under Pulumi mocks: what each registers and exports."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import get_args

import pytest

from pydantic import BaseModel

from settings.base import PinnedImage
from settings.loader import collect_problems
from settings.model import LangflowStackConfig
from tests.program import FAKE_PASSWORD, ROOT, FakeCluster, run_program, stack_values

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


@pytest.fixture(scope="module")
def dev():
    run = run_program(stack_values("dev"), "dev")
    assert run.error is None, run.error
    return run


@pytest.fixture(scope="module")
def prod():
    run = run_program(stack_values("prod"), "prod")
    assert run.error is None, run.error
    return run


# How the engine marks a secret value on the wire.
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def secret_value(wire):
    assert isinstance(wire, dict) and wire.get(SIG_KEY) == SECRET_SIG, f"not marked secret: {wire!r}"
    return wire["value"]


def pod_spec(run):
    return run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]["spec"]


def env(run) -> dict:
    (container,) = pod_spec(run)["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_dev_declares_what_the_issue_asks(dev):
    (container,) = pod_spec(dev)["containers"]
    assert container["image"] == "langflowai/langflow:1.6.4"
    assert env(dev)["LANGFLOW_DATABASE_URL"].startswith("sqlite:////app/data/")
    claim = dev.named(PVC, "langflow-data")
    assert claim.inputs["metadata"]["name"] == "langflow-data"
    assert claim.inputs["spec"]["resources"]["requests"]["storage"] == "1Gi"
    service = dev.one(SERVICE)
    assert service.inputs["spec"]["type"] == "ClusterIP"
    assert service.inputs["spec"]["ports"][0]["port"] == 7860
    assert container["readinessProbe"]["httpGet"]["path"] == "/health_check"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod_spec(dev)["securityContext"]["runAsNonRoot"] is True
    assert dev.one(NAMESPACE).inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert env(dev)["LANGFLOW_AUTO_LOGIN"] == "true"
    assert dev.named(DEPLOYMENT, "langflow").inputs["spec"]["strategy"] == {"type": "Recreate"}


def test_every_object_lands_in_the_stack_namespace(dev):
    for resource in dev.resources:
        if resource.type.startswith("kubernetes:") and resource.type != NAMESPACE:
            assert resource.inputs["metadata"]["namespace"] == "langflow-dev", resource.name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nothing_is_sent_before_its_namespace_and_no_workload_before_its_network_policies(stack):
    """An object sent before its Namespace exists is refused (404) on a first `pulumi up`; a pod started
    before its NetworkPolicies would run unguarded for a moment. With both slow to create, whatever does
    not wait for them registers first."""
    run = run_program(stack_values(stack), stack, slow=frozenset({NAMESPACE, NETWORK_POLICY}))
    assert run.error is None, run.error
    order = [r for r in run.resources if r.type.startswith("kubernetes:")]
    namespace = run.one(NAMESPACE).inputs["metadata"]["name"]
    assert order[0].type == NAMESPACE
    assert any(r.inputs["metadata"].get("namespace") == namespace for r in order[1:])
    last_policy = max(i for i, r in enumerate(order) if r.type == NETWORK_POLICY)
    assert [r.name for r in order[:last_policy] if r.type.split(":")[-1] in WORKLOADS] == []
    assert {r.type.split(":")[-1] for r in order[last_policy:]} >= {"Deployment", "Job"}


def test_the_workload_references_the_secret_and_flows_it_created(dev):
    secret_name = dev.one(SECRET).state["metadata"]["name"]
    assert env(dev)["LANGFLOW_SECRET_KEY"] == {"secretKeyRef": {"name": secret_name, "key": "LANGFLOW_SECRET_KEY"}}
    # The flows the pods load at start-up: the flow sync's ConfigMap, written once the sync succeeded.
    flows = dev.named(CONFIG_MAP, "langflow-flow-sync-live")
    volumes = {v["name"]: v for v in pod_spec(dev)["volumes"]}
    assert volumes["flows"]["configMap"] == {"name": flows.state["metadata"]["name"], "optional": True}
    assert json.loads(flows.inputs["data"]["echo.json"])["endpoint_name"] == "echo"
    assert dev.options[(CONFIG_MAP, "langflow-flow-sync-live")].delete_before_replace is True


def test_generated_secret_key_is_a_fernet_key_and_exported_secret(dev):
    key = secret_value(dev.one(SECRET).inputs["stringData"])["LANGFLOW_SECRET_KEY"]
    assert "+" not in key and "/" not in key and len(key) == 44
    exported = dev.outputs["secret_key"]
    assert exported.secret and exported.value == key
    assert "superuser" not in dev.outputs  # login off: no password to hand out


def test_outputs_tell_a_client_where_everything_lives(dev):
    assert dev.outputs["namespace"].value == "langflow-dev"
    assert dev.outputs["service_name"].value == "langflow"
    assert dev.outputs["base_url"].value == "http://langflow.langflow-dev.svc:7860"
    assert dev.outputs["image"].value == "langflowai/langflow:1.6.4"
    client = dev.outputs["client"].value
    assert client["run_url"] == "http://langflow.langflow-dev.svc:7860/api/v1/run/{flow_id}"
    assert client["default_flow_id"] == "echo"
    assert client["api_key_secret"] == {"name": "langflow-api-key", "key": "LANGFLOW_API_KEY"}
    client_map = dev.named(CONFIG_MAP, "langflow-client")
    assert client_map.inputs["metadata"]["name"] == client["config_map"]
    assert client_map.inputs["data"]["LANGFLOW_BASE_URL"] == dev.outputs["base_url"].value


def test_prod_requires_login_with_a_generated_password(prod):
    values = env(prod)
    assert values["LANGFLOW_AUTO_LOGIN"] == "false"
    assert values["LANGFLOW_SUPERUSER"] == "admin"
    assert values["LANGFLOW_BACKEND_ONLY"] == "true"
    assert secret_value(prod.named(SECRET, "langflow-credentials").inputs["stringData"])["LANGFLOW_SUPERUSER_PASSWORD"] == FAKE_PASSWORD
    superuser = prod.outputs["superuser"]
    assert superuser.secret and superuser.value == {"name": "admin", "password": FAKE_PASSWORD}
    assert prod.named("random:index/randomPassword:RandomPassword", "langflow-superuser-password").inputs["length"] >= 16
    assert prod.named(SERVICE, "langflow").inputs["spec"]["type"] == "ClusterIP"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_latest_fails_either_stack_before_anything_is_registered(stack):
    values = stack_values(stack)
    values["image"] = {**values["image"], "tag": "latest"}
    run = run_program(values, stack)
    assert run.error is not None
    assert "langflow:image.tag: 'latest' is a moving tag" in str(run.error)
    assert run.resources == []


def test_with_flows_update_restart_a_changed_flow_rolls_the_pods(tmp_path: Path):
    values = {**stack_values("dev"), "flows": {**stack_values("dev")["flows"], "update": "restart"}}
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    before = run_program(values, "dev", project_dir=tmp_path)
    flow = json.loads((tmp_path / "flows" / "echo.json").read_text())
    flow["description"] = "changed"
    (tmp_path / "flows" / "echo.json").write_text(json.dumps(flow))
    after = run_program(values, "dev", project_dir=tmp_path)
    template = lambda run: run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]  # noqa: E731
    assert template(before) != template(after)
    name = lambda run: run.named(CONFIG_MAP, "langflow-flows").state["metadata"]["name"]  # noqa: E731
    assert name(before) != name(after)


def test_a_bad_flow_stops_the_run_naming_the_file(tmp_path: Path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "broken.json").write_text(
        '{"name": "x", "endpoint_name": "x", "data": {"nodes": [], "edges": [{"source": "a", "target": "b"}]}}')
    run = run_program(stack_values("dev"), "dev", project_dir=tmp_path)
    assert run.error is not None and "flows/broken.json: data.edges[0]: source 'a' is not a node" in str(run.error)
    assert run.resources == []


def test_config_and_flow_problems_fail_the_run_together(tmp_path: Path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "broken.json").write_bytes(b"\xff")
    values = {**stack_values("prod"), "storage": {"access_mode": "ReadWriteOnce"},
              "extra_env": [{"name": "langflow_auto_login", "value": "true"}]}
    run = run_program(values, "prod", project_dir=tmp_path)
    message = str(run.error)
    assert "3 problems" in message and "Traceback" not in message
    for expected in ("langflow:storage.access_mode: 2 replicas cannot share a ReadWriteOnce volume",
                     "langflow:extra_env[0].name: langflow_auto_login is read by Langflow as LANGFLOW_AUTO_LOGIN",
                     "flows/broken.json: is not UTF-8"):
        assert expected in message, message
    assert run.resources == []


def test_an_existing_namespace_of_someone_else_is_never_adopted():
    cluster = FakeCluster({"langflow-dev": {"labels": {"team": "other"}, "annotations": {}}})
    run = run_program(stack_values("dev"), "dev", cluster=cluster)
    assert "langflow:namespace: namespace 'langflow-dev' already exists and was not created by this stack" in str(run.error)
    assert run.resources == []
    # Used as it is, it is neither labelled nor protected: no Namespace resource at all.
    run = run_program({**stack_values("dev"), "create_namespace": False}, "dev", cluster=cluster)
    assert run.error is None, run.error
    assert run.of_type(NAMESPACE) == []


def test_the_namespace_this_stack_created_is_kept():
    created = {"labels": {}, "annotations": {"langflow.org/stack": "langflow/dev"}}
    run = run_program(stack_values("dev"), "dev", cluster=FakeCluster({"langflow-dev": created}))
    assert run.error is None, run.error
    assert run.one(NAMESPACE).inputs["metadata"]["annotations"] == {"langflow.org/stack": "langflow/dev"}


def test_a_namespace_to_use_as_it_is_must_exist():
    run = run_program({**stack_values("dev"), "create_namespace": False}, "dev")
    assert "langflow:create_namespace: false, but namespace 'langflow-dev' does not exist" in str(run.error)


def test_data_volume_and_its_namespace_are_protected(dev):
    claim = dev.options[(PVC, "langflow-data")]
    assert claim.protect is True and claim.retain_on_delete is True
    namespace = dev.options[(NAMESPACE, "langflow-dev")]
    assert namespace.protect is True  # deleting it would delete the claim inside
    assert dev.options[(DEPLOYMENT, "langflow")].protect is not True


def test_generated_credentials_outlive_a_destroy_with_the_data(dev, prod):
    # The secret key decrypts what Langflow stored on the kept volume: a new one after destroy and up
    # would leave stored variables unreadable.
    for run in (dev, prod):
        for name in ("langflow-secret-key", "langflow-superuser-password"):
            assert [o.protect for (kind, n), o in run.options.items() if n == name and kind.startswith("random:")] \
                == [True], name
    run = run_program({**stack_values("dev"), "storage": {"protect": False}}, "dev")
    assert run.options[("random:index/randomBytes:RandomBytes", "langflow-secret-key")].protect is False


def test_unprotected_storage_is_still_retained():
    run = run_program({**stack_values("dev"), "storage": {"protect": False}}, "dev")
    claim = run.options[(PVC, "langflow-data")]
    assert claim.protect is False and claim.retain_on_delete is True
    # The backups in it are still protected, so the namespace is too.
    assert run.options[(NAMESPACE, "langflow-dev")].protect is True
    run = run_program({**stack_values("dev"), "storage": {"protect": False},
                       "backups": {"volume": {"protect": False}}}, "dev")
    assert run.options[(NAMESPACE, "langflow-dev")].protect is False


def test_children_have_their_component_as_parent(dev):
    for (t, name), opts in dev.options.items():
        if t.startswith(("kubernetes:", "random:")):
            assert opts.parent is not None and opts.parent._type.startswith("langflow:platform:"), (t, name)


def test_user_supplied_credentials_are_used_and_the_generated_ones_kept():
    key = "A" * 43 + "="
    run = run_program({**stack_values("prod"), "auth": {
        "enabled": True, "superuser_password": "a-long-password!", "secret_key": key}}, "prod")
    assert run.error is None, run.error
    # Still declared (and protected): a generated key may have encrypted data, and going back finds it.
    assert {r.name for r in run.resources if r.type.startswith("random:") and r.name.startswith(
        ("langflow-secret-key", "langflow-superuser"))} == {"langflow-secret-key", "langflow-superuser-password"}
    assert secret_value(run.named(SECRET, "langflow-credentials").inputs["stringData"]) == {"LANGFLOW_SECRET_KEY": key, "LANGFLOW_SUPERUSER_PASSWORD": "a-long-password!"}


WORKLOADS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:batch/v1:Job")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_image_deployed_is_pinned_annotated_and_exported(stack, request):
    run = request.getfixturevalue(stack)
    exported = set(run.outputs["images"].value.values())
    seen = set()
    for workload in (r for r in run.resources if r.type in WORKLOADS):
        images = {c["image"] for c in workload.inputs["spec"]["template"]["spec"]["containers"]}
        assert len(images) == 1, workload.name
        (image,) = images
        # A version tag (or a digest), never a moving one: settings/base.py refuses the rest.
        assert re.search(r":v?\d+\.\d+[^:/@]*(@sha256:[0-9a-f]{64})?$", image), image
        assert workload.inputs["metadata"]["annotations"]["langflow.org/image"] == image, workload.name
        seen.add(image)
    assert seen == exported
    # prod: Langflow, PostgreSQL, oauth2-proxy and its Redis, HAProxy
    assert len(exported) == (1 if stack == "dev" else 5)


def pinned_images(model: type, path: str = "") -> list[str]:
    """Every image field in the config model tree, as a config path."""
    found = []
    for name, field in model.model_fields.items():
        for annotation in (field.annotation, *get_args(field.annotation)):  # Optional[X] too
            if isinstance(annotation, type) and issubclass(annotation, PinnedImage):
                found.append(f"{path}{name}")
            elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found += pinned_images(annotation, f"{path}{name}.")
    return found


def test_every_image_in_config_refuses_moving_and_empty_tags():
    paths = pinned_images(LangflowStackConfig)
    assert set(paths) == {"image", "database.postgresql.image", "sso.oauth2_proxy.image", "sso.oauth2_proxy.redis.image",
                          "ambassador.image"}
    for path in paths:
        for tag in ("latest", "", "stable", "17", "main"):
            values: dict = {}
            node = values
            *parents, leaf = path.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = {"tag": tag}
            _, problems = collect_problems(values)
            assert any(p.startswith(f"{path}.tag") for p, _ in problems), (path, tag, problems)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_service_selects_pods_of_a_workload_that_has_its_own_await(stack, dev, prod):
    """Services skip the provider's 10 s endpoint-settling wait (components/common.py): that is safe only while
    each one selects the pods of a Deployment or StatefulSet of the stack, whose rollout await gates the
    update instead."""
    run = {"dev": dev, "prod": prod}[stack]
    templates = [r.inputs["spec"]["template"]["metadata"]["labels"]
                 for kind in ("Deployment", "StatefulSet") for r in run.of_type(f"kubernetes:apps/v1:{kind}")]
    services = run.of_type("kubernetes:core/v1:Service")
    assert len(services) == (7 if stack == "prod" else 1)
    for service in services:
        selector = service.inputs["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in templates), (service.name, selector)
        assert service.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true", service.name


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_container_command_holds_what_the_kubelet_would_rewrite(stack, request):
    """The kubelet turns `$$` into `$` in a container's command and args (the restore Job's SQL lost its dollar
    quotes that way on the real node). `$(NAME)` of a defined variable is expanded too, which the bootstrap Job
    uses on purpose."""
    run = request.getfixturevalue(stack)
    found = []
    for resource in run.resources:
        if resource.type.rsplit(":", 1)[-1] not in ("Deployment", "StatefulSet", "Job", "CronJob"):
            continue
        spec = resource.inputs["spec"]
        template = (spec.get("jobTemplate") or {}).get("spec", spec)["template"]["spec"]
        for container in template.get("initContainers", []) + template["containers"]:
            found += [(resource.name, container["name"]) for text in container.get("command", []) +
                      container.get("args", []) if "$$" in text]
    assert not found
