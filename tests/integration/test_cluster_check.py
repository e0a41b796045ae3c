"""The read-only cluster check, against a real API server and through the real CLI."""

from __future__ import annotations

import pytest

from settings.cluster import STACK_ANNOTATION, ClusterUnavailable, KubeconfigCluster
from tests.integration.pulumi_project import Project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(local_cluster_module):
    return local_cluster_module()


def test_namespaces_are_read_with_the_provider_s_kubeconfig(cluster):
    client = cluster.client()
    client.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "someone-else", "labels": {"team": "other"}, "annotations": {STACK_ANNOTATION: "langflow/prod"}}})
    by_path = KubeconfigCluster(str(cluster.kubeconfig))
    found = by_path.namespace("someone-else")
    assert found["labels"]["team"] == "other" and found["annotations"][STACK_ANNOTATION] == "langflow/prod"
    assert by_path.namespace("never-created") is None
    # `kubernetes:kubeconfig` may hold the file's content instead of its path.
    assert KubeconfigCluster(cluster.kubeconfig.read_text()).namespace("someone-else") is not None


def test_an_unreachable_cluster_is_reported_not_raised(cluster, tmp_path):
    with pytest.raises(ClusterUnavailable):
        KubeconfigCluster(str(tmp_path / "missing-kubeconfig")).namespace("x")
    dead = cluster.kubeconfig.read_text().replace(cluster.server, "https://127.0.0.1:9")
    with pytest.raises(ClusterUnavailable):
        KubeconfigCluster(dead, timeout=2).namespace("x")


def test_preview_refuses_to_adopt_an_existing_namespace(cluster, toolchain_bin, tmp_path):
    client = cluster.client()
    client.ensure("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "langflow-dev"}})
    project = Project(tmp_path, "dev", toolchain_bin, cluster.kubeconfig)
    failed = project.run("preview", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "langflow:namespace: namespace 'langflow-dev' already exists and was not created by this stack" in output, output[-3000:]
    assert "Traceback" not in output
    # Told to use it as it is, the program deploys into it without touching the namespace itself.
    project.set_path("create_namespace", "false")
    project.up()
    namespace = client.get("/api/v1/namespaces/langflow-dev")
    assert "pod-security.kubernetes.io/enforce" not in (namespace["metadata"].get("labels") or {})
    assert STACK_ANNOTATION not in (namespace["metadata"].get("annotations") or {})
    assert client.get("/apis/apps/v1/namespaces/langflow-dev/deployments/langflow")["spec"]["replicas"] == 1
