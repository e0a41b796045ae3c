"""prod's lifecycle on the real node: every step checked on the running containers, not on object status.

The stack is prod as committed, with what this machine cannot be replaced: the node has 2 CPUs (requests
scaled down), Debian's PostgreSQL 17 is 17.12 (the image tag says so), the API server's address is the
real node's, and single sign-on is off (the platform's Dex is not here; sign-in through oauth2-proxy and
Dex is proven on the real programs in test_sso_real.py, not yet in pods).

In order: the release (the database's bootstrap, the snapshot, the init Job, the flow sync and the
ambassador's key Job all run and exit 0); the default flow through the ambassador, which adds the key;
NetworkPolicies enforced between namespaces; the PodDisruptionBudget on real evictions; a rolling update
under load through the ambassador with no failed request, its `make up` killed mid-rollout and run again;
1.6.4 -> 1.13.0 (the init Job migrates the
database) and back with a confirmed restore, after which 1.6.4 serves what it held before.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from localcluster import node
from localcluster.daemon import alive
from localcluster.kubeapi import ApiError
from tests.integration.pulumi_project import Project
from tests.integration.test_real_node import wait
from tests.integration.test_recovery_real import Run
from tests.integration.conftest import require_real_node

pytestmark = pytest.mark.integration

NS = "langflow"
OLD, NEW = "1.6.4", "1.13.0"
POSTGRES = "17.12"  # what Debian 13 gives (docs/images.md); prod pins 17.6
IMAGES = [f"langflowai/langflow:{OLD}", f"langflowai/langflow:{NEW}", f"postgres:{POSTGRES}",
          "docker.io/library/haproxy:2.6.12"]


def ok(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    return run.stdout


def configure(project: Project, cluster) -> None:
    document = yaml.safe_load(project.stack_file().read_text())
    config = document["config"]
    config["langflow:sso"] = {"enabled": False}
    config["langflow:resources"]["requests"]["cpu"] = "250m"
    postgres = config["langflow:database"]["postgresql"]
    postgres["image"]["tag"] = POSTGRES
    postgres["in_cluster"]["resources"]["requests"]["cpu"] = "100m"
    egress = config["langflow:network_policies"]["egress"]
    del egress["oidc_issuer"]  # no sign-in here, so no issuer to reach
    egress["kubernetes_api"] = {"cidrs": [f"{node.API_ADDRESS}/32"], "ports": [cluster.ports["apiserver"]]}
    project.stack_file().write_text(yaml.safe_dump(document, sort_keys=False))


class Http:
    """Requests from this machine to a Service's cluster address (kube-proxy's rules route them)."""

    def __init__(self, client, namespace: str, name: str):
        service = client.get(f"/api/v1/namespaces/{namespace}/services/{name}")
        self.base = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"

    def __call__(self, path: str, data=None, headers=None, form: bool = False, timeout: float = 60):
        if data is not None and form:
            body, kind = urllib.parse.urlencode(data).encode(), "application/x-www-form-urlencoded"
        else:
            body, kind = (json.dumps(data).encode() if data is not None else None), "application/json"
        req = urllib.request.Request(self.base + path, data=body, headers={"Content-Type": kind, **(headers or {})})
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return json.loads(answer.read())


def pods_ran_for_real(client) -> set[str]:
    """Every pod's containers are containerd's; running ones ready, ended ones exited 0. The Jobs' names."""
    for pod in client.items(f"/api/v1/namespaces/{NS}/pods"):
        status = pod["status"]
        containers = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        assert all(c.get("containerID", "").startswith("containerd://") for c in containers), pod["metadata"]["name"]
        if status["phase"] == "Succeeded":
            assert all(c["state"]["terminated"]["exitCode"] == 0 for c in containers)
        elif pod["metadata"].get("deletionTimestamp") is None:
            assert status["phase"] == "Running", (pod["metadata"]["name"], status)
    jobs = client.items(f"/apis/batch/v1/namespaces/{NS}/jobs")
    for job in jobs:
        conditions = {c["type"]: c["status"] for c in job["status"].get("conditions") or []}
        assert conditions.get("Complete") == "True", job["metadata"]["name"]
    return {j["metadata"]["name"].rsplit("-", 1)[0] for j in jobs}


def job_in(client, namespace: str, name: str, image: str, script: str) -> bool:
    """A pod in `namespace` runs `script` (Python); True when it exits 0."""
    client.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "containers": [{"name": "probe", "image": image, "imagePullPolicy": "Never",
                            "command": ["python", "-c", script]}]}}}})

    def ended():
        status = client.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")["status"]
        return "yes" if status.get("succeeded") else "no" if status.get("failed") else None
    return wait(f"job {namespace}/{name}", ended, 180) == "yes"


def reaches(url: str) -> str:
    return (f"import urllib.request, sys\n"
            f"try:\n    urllib.request.urlopen({url!r}, timeout=5)\nexcept urllib.error.HTTPError:\n    pass\n"
            f"except Exception as e:\n    print(e); sys.exit(1)\n")


def evict(client, pod: str) -> int:
    try:
        client.create(f"/api/v1/namespaces/{NS}/pods/{pod}/eviction", {
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": NS}})
        return 201
    except ApiError as error:
        return error.status


def ready_langflow(client) -> list[str]:
    pods = client.items(f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/name%3Dlangflow")
    return [p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
            and all(c["ready"] for c in p["status"].get("containerStatuses") or [{"ready": False}])]


@pytest.fixture(scope="module")
def cluster(toolchain_bin, local_cluster_module):
    require_real_node(toolchain_bin)
    started = local_cluster_module(nodes=0, real_node=True)
    started.node.import_images(IMAGES)  # up front: on demand, a release would wait on the kubelet's back-off
    return started


def test_prod_lifecycle_on_real_pods(toolchain_bin, cluster, tmp_path):
    client = cluster.client()
    project = Project(tmp_path, "prod", toolchain_bin, cluster.kubeconfig, git=True)
    configure(project, cluster)
    project.commit("prod for the real node")
    ok(project.releases("up", "--message", "v1"))

    # Every workload ran for real, in the order the release gives them.
    assert {"langflow-postgres-bootstrap", "langflow-snapshot", "langflow-init", "langflow-flow-sync",
            "langflow-ambassador-key"} <= pods_ran_for_real(client)
    assert len(ready_langflow(client)) == 2

    # The default flow through the ambassador, which adds the API key: the caller holds none.
    outputs = project.outputs()
    ambassador = Http(client, NS, "langflow-ambassador")
    answer = ambassador("/api/v1/run/echo", {"input_value": "through the ambassador", "input_type": "chat",
                                             "output_type": "chat"}, timeout=120)
    assert "through the ambassador" in json.dumps(answer)

    # NetworkPolicies, from pods: `pipelines` reaches the ambassador and not Langflow; elsewhere, neither.
    image = f"langflowai/langflow:{OLD}"
    langflow_url = f"{outputs['base_url']}/health_check"
    ambassador_url = f"{outputs['client']['base_url']}/health_check"
    for namespace in ("pipelines", "elsewhere"):
        client.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    assert job_in(client, "pipelines", "to-ambassador", image, reaches(ambassador_url))
    assert not job_in(client, "pipelines", "to-langflow", image, reaches(langflow_url))
    assert not job_in(client, "elsewhere", "to-ambassador", image, reaches(ambassador_url))
    assert not job_in(client, "elsewhere", "to-langflow", image, reaches(langflow_url))

    # The disruption budget, on real evictions: one Langflow pod may go, a second may not until it is back.
    first, second = ready_langflow(client)
    assert evict(client, first) == 201
    assert evict(client, second) == 429
    wait("two ready Langflow pods again", lambda: len(ready_langflow(client)) == 2, 300)

    # Data the old release holds: a flow and an encrypted variable, as the superuser.
    langflow = Http(client, NS, "langflow")
    login = langflow("/api/v1/login", {"username": outputs["superuser"]["name"],
                                       "password": outputs["superuser"]["password"]}, form=True)
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    flow = langflow("/api/v1/flows/", {"name": "Before the upgrade", "data": {"nodes": [], "edges": []}},
                    headers=bearer)
    variable = langflow("/api/v1/variables/", {"name": "KEPT", "value": "encrypted at rest", "type": "Generic",
                                               "default_fields": []}, headers=bearer)

    # A rolling update under load through the ambassador: no request fails.
    failures, answered, stop = [], [0], threading.Event()

    def load():
        while not stop.is_set():
            try:
                ambassador("/api/v1/run/echo", {"input_value": "load", "input_type": "chat",
                                                 "output_type": "chat"}, timeout=60)
                answered[0] += 1
            except (urllib.error.URLError, OSError, ValueError) as error:
                failures.append(repr(error))
            time.sleep(0.2)
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    project.set_path("runtime.log_level", "debug")
    project.commit("log level debug")
    # `make up` killed (its whole process group) while the rollout runs, then one more: converged.
    before = client.get(f"/apis/apps/v1/namespaces/{NS}/deployments/langflow")["metadata"]["generation"]
    killed = Run(project, "up", "--message", "v2: a rolling update")
    orphans = killed.kill_when(lambda: client.get(f"/apis/apps/v1/namespaces/{NS}/deployments/langflow")
                               ["metadata"]["generation"] > before)
    again = ok(project.releases("up", "--message", "v2 again, after the kill"))
    assert "interrupted" in again, again[-3000:]  # the next command settled what the kill left
    assert not [pid for pid in orphans if alive(pid)]
    stop.set()
    loader.join(120)
    assert answered[0] > 10 and not failures, (answered[0], failures[:5])
    pods_ran_for_real(client)
    assert len(ready_langflow(client)) == 2
    deploy = client.get(f"/apis/apps/v1/namespaces/{NS}/deployments/langflow")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert {"name": "LANGFLOW_LOG_LEVEL", "value": "debug"} in container["env"]

    # 1.6.4 -> 1.13.0: the init Job migrates the database before the new pods start.
    project.set_path("image.tag", NEW)
    project.commit("Langflow 1.13.0")
    ok(project.releases("up", "--message", "v3: Langflow 1.13.0"))
    pods_ran_for_real(client)
    assert wait("the old pods gone", lambda: {
        c["image"] for p in client.items(f"/api/v1/namespaces/{NS}/pods?labelSelector=app.kubernetes.io/name%3Dlangflow")
        for c in p["spec"]["containers"]} == {f"langflowai/langflow:{NEW}"}, 120)
    assert len(ready_langflow(client)) == 2
    bearer = {"Authorization": "Bearer " + langflow("/api/v1/login", {
        "username": outputs["superuser"]["name"], "password": outputs["superuser"]["password"]},
        form=True)["access_token"]}
    assert langflow(f"/api/v1/flows/{flow['id']}", headers=bearer)["name"] == "Before the upgrade"

    # Back to 1.6.4 across the schema change: refused without confirmation, then the restore Job restores.
    refused = project.releases("rollback")
    assert refused.returncode == 2 and "CONFIRM=restore" in refused.stdout + refused.stderr
    ok(project.releases("rollback", "--confirm-restore"))
    restores = [j for j in client.items(f"/apis/batch/v1/namespaces/{NS}/jobs") if "restore" in j["metadata"]["name"]]
    assert restores and all(j["status"].get("succeeded") for j in restores)
    assert wait("1.6.4 serving again", lambda: len(ready_langflow(client)) == 2, 300)
    bearer = {"Authorization": "Bearer " + langflow("/api/v1/login", {
        "username": outputs["superuser"]["name"], "password": outputs["superuser"]["password"]},
        form=True)["access_token"]}
    assert langflow(f"/api/v1/flows/{flow['id']}", headers=bearer)["name"] == "Before the upgrade"
    kept = [v for v in langflow("/api/v1/variables/", headers=bearer) if v["id"] == variable["id"]]
    assert kept and kept[0]["value"] == "encrypted at rest"
    # The ambassador answers its JSON 503 until its health checks see Langflow back (seconds), then runs the flow.
    def through_ambassador():
        try:
            return json.dumps(ambassador("/api/v1/run/echo", {"input_value": "through the ambassador",
                                                             "input_type": "chat", "output_type": "chat"}, timeout=120))
        except urllib.error.HTTPError as error:
            assert error.code == 503, error
            return None
    assert "through the ambassador" in wait("the ambassador to see Langflow back", through_ambassador, 60)
