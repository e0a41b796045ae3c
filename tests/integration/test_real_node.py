"""The local cluster's real node (localcluster/node.py): pods run as containers on this machine.

Each check is made on what runs, not on object status: a DNS answer from CoreDNS through kube-proxy, a
file a container wrote into its volume on this machine's disk, a connection a NetworkPolicy refuses, a
crashed container's own log lines. The node must leave nothing behind when it stops.
"""

from __future__ import annotations

import random
import socket
import struct
import time
from pathlib import Path

import pytest

from localcluster import node
from localcluster.kubeapi import ApiError
from tests.integration.conftest import require_real_node

pytestmark = pytest.mark.integration

REDIS = "docker.io/library/redis:7.0.15"


@pytest.fixture(scope="module")
def real_cluster(toolchain_bin, local_cluster_module):
    require_real_node(toolchain_bin)
    cluster = local_cluster_module(nodes=0, real_node=True)
    cluster.node.import_images([REDIS])
    return cluster


def dns_query(server: str, name: str) -> list[str]:
    """A records for `name`, asked over UDP (the standard library has no resolver for a given server)."""
    ident = random.randrange(65536)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question, (server, 53))
        reply, _ = s.recvfrom(4096)
    count = struct.unpack(">H", reply[6:8])[0]
    offset, found = 12 + len(question), []
    for _ in range(count):
        while reply[offset] and reply[offset] < 0xC0:  # the owner name: labels, or a pointer
            offset += reply[offset] + 1
        offset += 2 if reply[offset] >= 0xC0 else 1
        kind, _, _, length = struct.unpack(">HHIH", reply[offset:offset + 10])
        offset += 10
        if kind == 1:
            found.append(socket.inet_ntoa(reply[offset:offset + length]))
        offset += length
    return found


def wait(what: str, check, timeout: float = 120.0):
    """check()'s first true result; an OSError (a Service without endpoints yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def namespace(client, name: str, labels: dict | None = None) -> None:
    client.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name, "labels": labels or {}}})


def run_job(client, ns: str, name: str, script: str, timeout: float = 120.0) -> str:
    """Run `script` in a Redis container as a Job; returns 'Complete' or 'Failed'."""
    client.create(f"/apis/batch/v1/namespaces/{ns}/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 999},
            "containers": [{"name": "client", "image": REDIS, "imagePullPolicy": "Never",
                            "command": ["sh", "-c", script]}]}}}})

    def ended():
        job = client.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")
        conditions = {c["type"]: c["status"] for c in (job.get("status") or {}).get("conditions") or []}
        return next((kind for kind in ("Complete", "Failed") if conditions.get(kind) == "True"), None)
    return wait(f"job {ns}/{name}", ended, timeout)


def test_services_dns_volumes_and_network_policies_work_for_real(real_cluster):
    client = real_cluster.client()
    # The host asks CoreDNS (a pod) through kube-proxy's rules; CoreDNS answers from the API server, which
    # it reaches from its pod through the `kubernetes` Service.
    assert wait("CoreDNS's answer", lambda: dns_query(node.CLUSTER_DNS, "kubernetes.default.svc.cluster.local")) \
        == ["10.96.0.1"]

    namespace(client, "store")
    namespace(client, "client")
    labels = {"app": "redis"}
    client.create("/api/v1/namespaces/store/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    client.create("/apis/apps/v1/namespaces/store/deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "redis"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 999, "fsGroup": 999},
            "containers": [{"name": "redis", "image": REDIS, "imagePullPolicy": "Never",
                            "args": ["redis-server", "--dir", "/data"],
                            "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1},
                            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}}})
    client.create("/api/v1/namespaces/store/services", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"},
        "spec": {"selector": labels, "ports": [{"port": 6379}]}})
    wait("redis to be ready", lambda: (client.get("/apis/apps/v1/namespaces/store/deployments/redis")
                                       .get("status") or {}).get("readyReplicas"))

    # Another namespace's pod reaches it by the name the program would render, and its write lands in a
    # directory on this machine.
    redis = "redis-cli -h redis.store.svc.cluster.local"
    assert run_job(client, "client", "write", f"{redis} set answer 42 && {redis} save") == "Complete"
    claim = client.get("/api/v1/namespaces/store/persistentvolumeclaims/data")
    pv = client.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    assert "local" in pv["spec"]
    assert (Path(pv["spec"]["local"]["path"]) / "dump.rdb").stat().st_size > 0

    # A NetworkPolicy is enforced: from a namespace it does not allow, the connection fails; allowed, it works.
    client.create("/apis/networking.k8s.io/v1/namespaces/store/networkpolicies", {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "only-allowed"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [
            {"namespaceSelector": {"matchLabels": {"allowed": "yes"}}}]}]}})
    time.sleep(2)  # kube-network-policies learns the policy from its watch
    assert run_job(client, "client", "refused", f"timeout 5 {redis} ping") == "Failed"
    client.merge_patch("/api/v1/namespaces/client", {"metadata": {"labels": {"allowed": "yes"}}})
    time.sleep(2)
    assert run_job(client, "client", "allowed", f"timeout 5 {redis} ping | grep -x PONG") == "Complete"


def test_a_crashed_container_shows_its_last_log_lines(real_cluster):
    client = real_cluster.client()
    namespace(client, "crash")
    client.create("/api/v1/namespaces/crash/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "falls-over"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "app", "image": REDIS, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo starting; echo 'fatal: no config at /etc/app.yaml' >&2; exit 3"]}]}})
    report = wait("the container to end", lambda: node.crash_report(client, "crash"))
    assert "crash/falls-over container app" in report and "exit code 3" in report
    assert "fatal: no config at /etc/app.yaml" in report


def test_an_image_nobody_can_build_gets_an_event_saying_why(real_cluster):
    client = real_cluster.client()
    namespace(client, "unknown")
    client.create("/api/v1/namespaces/unknown/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nowhere"},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/nothing:1.0"}]}})

    def event():
        try:
            events = client.items("/api/v1/namespaces/unknown/events")
        except ApiError:
            return None
        return [e["message"] for e in events if e.get("reason") == "ImageBuildFailed"]
    messages = wait("the image event", event, 30)
    assert "example.invalid/nothing:1.0" in messages[0]


def test_the_stopped_node_leaves_nothing_behind(real_cluster):
    """Last in this module: it stops the module's cluster, with its containers still running."""
    client = real_cluster.client()
    client.create("/api/v1/namespaces/default/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
        "spec": {"containers": [{"name": "app", "image": REDIS, "imagePullPolicy": "Never"}]}})
    wait("the pod to run", lambda: (client.get("/api/v1/namespaces/default/pods/sleeper").get("status") or {})
         .get("phase") == "Running")
    workdir = real_cluster.node.workdir
    assert node.leftover_links() and node.leftover_chains() and node.leftover_cgroups()  # it did change the host
    assert node.mounts_under([workdir]) and node.leftover_processes(workdir)
    real_cluster.stop()
    assert node.leftovers(workdir) == {"processes": [], "mounts": [], "links": [], "chains": [], "cgroups": []}
    assert not node.HOST_STATE.exists()
