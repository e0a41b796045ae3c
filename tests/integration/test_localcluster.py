"""The local cluster behaves enough like a real one for Pulumi's awaits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localcluster import ApiError, KubeClient, LocalCluster
from localcluster.stages import LANGFLOW_STOP_SECONDS, NEVER_READY_REGISTRY

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def wait_for(what: str, predicate, timeout: float = 60.0, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except ApiError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def conditions(obj: dict) -> dict:
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions") or []}


def processes_mentioning(needles: list[str]) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), os.getppid()):
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(n in cmd for n in needles):
            found.append((int(entry.name), cmd))
    return found


def leftover_processes(workdir: Path, ports: dict) -> list[tuple[int, str]]:
    needles = [str(workdir)]
    for port in ports.values():
        needles += [f":{port} ", f":{port}/", f"={port} ", f":{port},"]
    # (cmdline strings end with a space after the NUL replacement above)
    return processes_mentioning(needles)


@pytest.fixture(scope="module")
def cluster(local_cluster_module) -> LocalCluster:
    return local_cluster_module()


@pytest.fixture(scope="module")
def api(cluster) -> KubeClient:
    client = cluster.client()
    yield client
    client.close()


@pytest.fixture
def namespace(api, request) -> str:
    name = "t-" + request.node.name.replace("_", "-")[:40].lower().strip("-")
    api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": name}})
    wait_for(f"default ServiceAccount in {name}",
             lambda: api.get_or_none(f"/api/v1/namespaces/{name}/serviceaccounts/default"))
    return name


def test_started_quickly_with_kubeconfig(cluster):
    print(f"startup took {cluster.startup_seconds:.1f}s")
    assert cluster.startup_seconds < 60
    text = cluster.kubeconfig.read_text()
    assert cluster.server in text
    assert cluster.server.startswith("https://127.0.0.1:")


def test_everything_listens_on_loopback_only(cluster):
    pids = set(cluster.pids().values())
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, st, inode = fields[1], fields[3], fields[9]
            if st == "0A" and inode in inodes:  # LISTEN
                listening.append((table, local))
    assert listening
    for table, local in listening:
        addr = local.split(":")[0]
        if table.endswith("tcp"):
            assert addr == "0100007F", f"listening on non-loopback {local}"
        else:
            assert addr in ("00000000000000000000000001000000", "0000000000000000FFFF00000100007F"), local


def test_nodes_ready(api):
    nodes = api.items("/api/v1/nodes")
    assert len(nodes) == 3
    for node in nodes:
        assert conditions(node).get("Ready") == "True", node["metadata"]["name"]


def test_default_service_account_and_crds(api):
    assert api.get("/api/v1/namespaces/default/serviceaccounts/default")
    crd = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/oauth2clients.dex.coreos.com")
    assert conditions(crd)["Established"] == "True"
    spec = crd["spec"]
    assert spec["group"] == "dex.coreos.com"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == "OAuth2Client"
    assert spec["names"]["plural"] == "oauth2clients"
    (version,) = spec["versions"]
    assert version["name"] == "v1" and version["served"] and version["storage"]
    assert version["schema"]["openAPIV3Schema"] == {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_oauth2client_accepts_top_level_fields(api, namespace):
    path = f"/apis/dex.coreos.com/v1/namespaces/{namespace}/oauth2clients"
    obj = {
        "apiVersion": "dex.coreos.com/v1",
        "kind": "OAuth2Client",
        "metadata": {"name": "mfrwg2lunf2gc5dfomxsyzltnotywlvh"},
        "id": "langflow",
        "secret": "s3cret",
        "redirectURIs": ["https://langflow.example.test/oauth2/callback"],
        "trustedPeers": [],
        "public": False,
        "name": "Langflow",
        "logoURL": "",
    }
    api.create(path, obj)
    got = api.get(f"{path}/{obj['metadata']['name']}")
    for key in ("id", "secret", "redirectURIs", "public", "name"):
        assert got[key] == obj[key], key
    assert "spec" not in got


def test_default_storage_class_and_ingress_class(api):
    classes = api.items("/apis/storage.k8s.io/v1/storageclasses")
    defaults = [c for c in classes if (c["metadata"].get("annotations") or {}).get(
        "storageclass.kubernetes.io/is-default-class") == "true"]
    assert len(defaults) == 1
    assert defaults[0]["volumeBindingMode"] == "Immediate"
    ic = api.get("/apis/networking.k8s.io/v1/ingressclasses/nginx")
    assert ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"


def test_pvc_gets_bound_and_released_volume_deleted(api, namespace):
    pvcs = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
    api.create(pvcs, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    })
    pvc = wait_for("PVC Bound", lambda: (lambda p: p if p.get("status", {}).get("phase") == "Bound"
                                         else None)(api.get(f"{pvcs}/data")))
    assert pvc["spec"]["storageClassName"] == "standard"  # the default class applied
    assert pvc["status"]["capacity"]["storage"] == "2Gi"
    pv_name = pvc["spec"]["volumeName"]
    pv = api.get(f"/api/v1/persistentvolumes/{pv_name}")
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert Path(pv["spec"]["hostPath"]["path"]).is_dir()

    # Expansion: the claim grows, the volume follows.
    api.merge_patch(f"{pvcs}/data", {"spec": {"resources": {"requests": {"storage": "3Gi"}}}})
    wait_for("PVC resized", lambda: api.get(f"{pvcs}/data")["status"]["capacity"]["storage"] == "3Gi")

    api.delete(f"{pvcs}/data")
    wait_for("released PV deleted",
             lambda: api.get_or_none(f"/api/v1/persistentvolumes/{pv_name}") is None)


def test_deployment_available_and_service_endpoints(api, namespace):
    labels = {"app": "web"}
    api.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": "web", "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
                }]},
            },
        },
    })
    api.create(f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]},
    })

    def available():
        d = api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
        return d.get("status", {}).get("availableReplicas") == 2 and \
            conditions(d).get("Available") == "True"

    wait_for("Deployment available", available)
    pods = api.items(f"/api/v1/namespaces/{namespace}/pods")
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"].get("nodeName", "").startswith("kwok-node-")
        assert pod["status"].get("podIP", "").startswith("10.244.")
        assert not pod["status"]["podIP"].endswith(".0")
        assert conditions(pod).get("Ready") == "True"

    def endpoints_ready():
        ep = api.get_or_none(f"/api/v1/namespaces/{namespace}/endpoints/web")
        addrs = [a for s in (ep or {}).get("subsets") or [] for a in s.get("addresses") or []]
        return len(addrs) == 2

    def slices_ready():
        slices = api.items(f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
                           "?labelSelector=kubernetes.io%2Fservice-name%3Dweb")
        ready = [e for s in slices for e in s.get("endpoints") or []
                 if (e.get("conditions") or {}).get("ready")]
        return len(ready) == 2

    wait_for("Service endpoints", endpoints_ready)
    wait_for("EndpointSlices", slices_ready)


def test_an_image_update_rolls_out_in_seconds(api, namespace):
    """kwok must see pod changes at once: with the WatchList fix an old pod is gone in seconds, not a minute.

    Without `--feature-gates=WatchList=false` (etcd 3.4 lacks RequestWatchProgress) this took 50 to 80 s.
    """
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/app"
    labels = {"app": "app"}
    api.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "terminationGracePeriodSeconds": 60,
                     "containers": [{"name": "app", "image": "busybox:1.36"}]}}},
    })

    def rolled_out():
        d = api.get(path)
        status = d.get("status", {})
        pods = api.items(f"/api/v1/namespaces/{namespace}/pods")
        return status.get("observedGeneration") == d["metadata"]["generation"] and \
            status.get("updatedReplicas") == status.get("availableReplicas") == status.get("replicas") == 1 and \
            len(pods) == 1

    wait_for("first rollout", rolled_out)
    start = time.monotonic()
    api.merge_patch(path, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]}}}})
    wait_for("image update", rolled_out, timeout=60)
    elapsed = time.monotonic() - start
    assert elapsed < 15, f"image update took {elapsed:.1f}s"


def pod(name: str, image: str, container: str = "app", job: bool = False) -> dict:
    spec = {"terminationGracePeriodSeconds": 60, "containers": [{"name": container, "image": image}]}
    if job:
        spec["restartPolicy"] = "Never"
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                "spec": {"backoffLimit": 0, "template": {"spec": spec}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def test_simulated_langflow_pods_stop_as_slowly_as_the_real_one(api, namespace):
    """A pod with a `langflow` container takes LANGFLOW_STOP_SECONDS to go, others go at once."""
    for name, container in (("langflow", "langflow"), ("proxy", "proxy")):
        api.create(f"/api/v1/namespaces/{namespace}/pods", pod(name, "example/app:1.0", container))
    for name in ("langflow", "proxy"):
        wait_for(f"{name} ready", lambda: conditions(api.get(f"/api/v1/namespaces/{namespace}/pods/{name}")).get(
            "Ready") == "True")
    gone = {}
    start = time.monotonic()
    for name in ("langflow", "proxy"):
        api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
    while len(gone) < 2 and time.monotonic() - start < 30:
        for name in ("langflow", "proxy"):
            if name not in gone and api.get_or_none(f"/api/v1/namespaces/{namespace}/pods/{name}") is None:
                gone[name] = time.monotonic() - start
        time.sleep(0.1)
    assert gone["proxy"] < 1.5, gone
    assert LANGFLOW_STOP_SECONDS - 0.2 <= gone["langflow"] <= LANGFLOW_STOP_SECONDS + 2, gone


def test_an_image_from_the_never_ready_registry_never_becomes_ready(api, namespace):
    image = f"{NEVER_READY_REGISTRY}/langflowai/langflow:1.6.4"
    api.create(f"/api/v1/namespaces/{namespace}/pods", pod("broken", image))
    api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", pod("broken-job", image, job=True))
    api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", pod("good-job", "example/app:1.0", job=True))
    wait_for("the broken pod running", lambda: api.get(f"/api/v1/namespaces/{namespace}/pods/broken")[
        "status"].get("phase") == "Running")
    wait_for("the Jobs ended", lambda: all(conditions(api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{j}")).get(
        kind) == "True" for j, kind in (("broken-job", "Failed"), ("good-job", "Complete"))))
    time.sleep(2)
    status = api.get(f"/api/v1/namespaces/{namespace}/pods/broken")["status"]
    assert conditions({"status": status}).get("Ready") == "False" and status["phase"] == "Running"


def test_statefulset_with_volume_claim_template_becomes_ready(api, namespace):
    labels = {"app": "db"}
    api.create(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db",
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "pg", "image": "postgres:16",
                                                  "volumeMounts": [{"name": "data",
                                                                    "mountPath": "/var/lib/postgresql/data"}]}]}},
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    })

    def ready():
        s = api.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/db")["status"]
        return s.get("readyReplicas") == 1 and s.get("currentRevision") == s.get("updateRevision")

    wait_for("StatefulSet ready", ready)
    pvc = api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data-db-0")
    assert pvc["status"]["phase"] == "Bound"


def test_loadbalancer_service_and_ingress_get_addresses(api, namespace):
    api.create(f"/api/v1/namespaces/{namespace}/services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 443}]},
    })
    api.create(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "langflow.example.test", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "lb", "port": {"number": 443}}}}]}}],
        },
    })

    def lb_address():
        svc = api.get(f"/api/v1/namespaces/{namespace}/services/lb")
        return (svc["status"].get("loadBalancer") or {}).get("ingress")

    def ingress_address():
        ing = api.get(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/web")
        return (ing["status"].get("loadBalancer") or {}).get("ingress")

    assert wait_for("LoadBalancer address", lb_address)[0]["ip"] == "127.0.0.1"
    assert wait_for("Ingress address", ingress_address)[0]["ip"] == "127.0.0.1"


def test_stop_leaves_no_process(cluster):
    # Runs last in this module: stop the shared cluster and look for leftovers.
    pids = list(cluster.pids().values())
    ports = dict(cluster.ports)
    assert pids and leftover_processes(cluster.workdir, ports)
    cluster.stop()
    assert not [p for p in pids if Path(f"/proc/{p}").exists()
                and "Z" != Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[-1].split()[0]]
    assert leftover_processes(cluster.workdir, ports) == []
    cluster.stop()  # idempotent


def test_cli_up_status_down(toolchain_bin, tmp_path):
    workdir = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args, timeout=180):
        return subprocess.run([sys.executable, "-m", "localcluster", *args, "--dir", str(workdir)],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)

    try:
        up = cli("up", "--bin", str(toolchain_bin))
        assert up.returncode == 0, up.stderr
        kubeconfig = Path(up.stdout.strip().splitlines()[-1])
        assert kubeconfig == workdir / "kubeconfig" and kubeconfig.exists()
        again = cli("up", "--bin", str(toolchain_bin))  # idempotent
        assert again.returncode == 0, again.stderr
        st = cli("status")
        assert st.returncode == 0, st.stdout + st.stderr
        assert '"running"' in st.stdout
        assert leftover_processes(workdir, {})
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    assert leftover_processes(workdir, {}) == []
    assert cli("status").returncode == 3
    assert cli("down").returncode == 0  # idempotent
