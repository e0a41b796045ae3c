"""The ambassador under mocks and as plain data: what it declares, who holds the key, and what it refuses.

HAProxy itself runs the rendered config in tests/test_ambassador_haproxy.py (stand-ins) and
tests/langflow/test_ambassador_real.py (real Langflow processes).
"""

from __future__ import annotations

from typing import Any

import pytest

from components.ambassador import spec
from settings.ambassador import AmbassadorConfig
from settings.cluster import POD_MONITOR_CRD
from tests.program import FAKE_PASSWORD, FakeCluster, run_program, stack_values
from tests.test_config import assert_refused
from tests.test_network_policies import namespace_peers, on_port, pod_peers, policies, selected, workloads

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"


def run(values: dict[str, Any], stack: str = "prod", cluster: FakeCluster | None = None):
    result = run_program(values, stack, cluster=cluster)
    assert result.error is None, result.error
    return result


def with_langflow(tag: str, **ambassador: Any) -> dict[str, Any]:
    values = stack_values("prod")
    values["image"] = {**values["image"], "tag": tag}
    values["ambassador"] = {**values["ambassador"], **ambassador}
    return values


@pytest.fixture(scope="module")
def prod():
    return run(stack_values("prod"))


@pytest.fixture(scope="module")
def newer():
    """Langflow 1.13 (its key from the environment), with a sidecar namespace."""
    return run(with_langflow("1.13.0", sidecar_namespaces=["reports"]))


def env_of(resource) -> dict[str, Any]:
    (container,) = resource.inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def secret_value(wire: Any) -> Any:
    return wire["value"] if isinstance(wire, dict) and "value" in wire else wire


def test_prod_runs_haproxy_with_its_own_config_and_no_key_in_sight(prod):
    deployment = prod.named(DEPLOYMENT, "langflow-ambassador")
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "docker.io/library/haproxy:2.6.12" and deployment.inputs["spec"]["replicas"] == 2
    assert container["env"] == [{"name": "LANGFLOW_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": "langflow-ambassador-key", "key": "LANGFLOW_API_KEY"}}}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["automountServiceAccountToken"] is False
    config_map = pod["volumes"][0]["configMap"]["name"]
    text = next(r for r in prod.of_type(CONFIG_MAP) if r.state["metadata"]["name"] == config_map).inputs["data"]["haproxy.cfg"]
    assert "server-template langflow 4 langflow-pods.langflow.svc.cluster.local:7860" in text
    assert "timeout connect 5s" in text and "timeout server 3600s" in text
    annotations = deployment.inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations[spec.CONFIG_DIGEST_ANNOTATION] == spec.config_digest(text)
    assert annotations["prometheus.io/port"] == "8404"
    # The headless Service lists exactly Langflow's pods; the ambassador's Service only its own.
    pods = workloads(prod)
    headless = prod.named(SERVICE, "langflow-ambassador-langflow-pods").inputs["spec"]
    assert headless["clusterIP"] == "None" and selected({"matchLabels": headless["selector"]}, pods) == {"Deployment/langflow"}
    service = prod.named(SERVICE, "langflow-ambassador").inputs["spec"]
    assert selected({"matchLabels": service["selector"]}, pods) == {"Deployment/langflow-ambassador"}
    assert service["ports"][0]["port"] == 80 and service["ports"][0]["targetPort"] == "http"
    assert prod.options[(DEPLOYMENT, "langflow-ambassador")].depends_on  # waits for its key and config


def test_on_langflow_1_6_a_job_makes_the_key_with_rights_to_that_secret_only(prod):
    secret = prod.named(SECRET, "langflow-ambassador-key-langflow")
    assert "stringData" not in secret.inputs and "data" not in secret.inputs  # the Job fills it
    job = next(r for r in prod.of_type(JOB) if r.name == "langflow-ambassador-key")
    pod = job.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "langflowai/langflow:1.6.4"
    assert container["command"][:4] == ["python", "/ambassador-key/api_key.py", "--url", "http://langflow.langflow.svc:7860"]
    assert container["command"][4:8] == ["--secret", "langflow/langflow-ambassador-key",
                                         "--deployment", "langflow/langflow-ambassador"]
    assert env_of(job)["LANGFLOW_SUPERUSER"] == "admin"
    assert pod["serviceAccountName"] == "langflow-ambassador-key" and pod["automountServiceAccountToken"] is True
    (role,) = prod.of_type(ROLE)
    # Its Secret, and the shared ambassador's Deployment, which it rolls onto a new key.
    assert role.inputs["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                     "resourceNames": ["langflow-ambassador-key"], "verbs": ["get", "patch"]},
                                    {"apiGroups": ["apps"], "resources": ["deployments"],
                                     "resourceNames": ["langflow-ambassador"], "verbs": ["get", "patch"]}]
    # Pulumi never sees that key: the Job sets the key's digest on the pod template, not Pulumi.
    annotations = prod.named(DEPLOYMENT, "langflow-ambassador").inputs["spec"]["template"]["metadata"]["annotations"]
    assert spec.KEY_DIGEST_ANNOTATION not in annotations and spec.KEY_JOB_DIGEST_ANNOTATION not in annotations
    # After Langflow serves, and named after its scripts and Secrets: the same Job is never run twice.
    depends = prod.options[(JOB, "langflow-ambassador-key")].depends_on
    assert any(getattr(d, "_name", "") == "langflow" for d in depends)
    scripts = next(r for r in prod.of_type(CONFIG_MAP) if r.name == "langflow-ambassador-key-scripts")
    assert set(scripts.inputs["data"]) == {"api_key.py", "sync.py"}
    # Langflow 1.6 has no key from the environment: nothing of the kind is set.
    assert "LANGFLOW_API_KEY" not in env_of(prod.named(DEPLOYMENT, "langflow"))


def test_on_langflow_1_7_and_later_the_key_is_generated_and_langflow_reads_it_from_env(newer):
    assert not [r for r in newer.of_type(JOB) if "ambassador-key" in r.name] and not newer.of_type(ROLE)
    env = env_of(newer.named(DEPLOYMENT, "langflow"))
    assert env["LANGFLOW_API_KEY_SOURCE"] == "env"
    credentials = newer.named(SECRET, "langflow-credentials")
    assert env["LANGFLOW_API_KEY"] == {"secretKeyRef": {"name": credentials.state["metadata"]["name"],
                                                         "key": "LANGFLOW_API_KEY"}}
    key = secret_value(credentials.inputs["stringData"])["LANGFLOW_API_KEY"]
    assert key == f"sk-{FAKE_PASSWORD}"
    # The same key in the ambassador's Secret, here and in the sidecar's namespace.
    for namespace in ("langflow", "reports"):
        secret = newer.named(SECRET, f"langflow-ambassador-key-{namespace}")
        assert secret.inputs["metadata"]["namespace"] == namespace
        assert secret_value(secret.inputs["stringData"]) == {"LANGFLOW_API_KEY": key}


def test_on_langflow_1_7_a_new_key_rolls_the_ambassador_pods(newer, monkeypatch):
    """HAProxy reads the key once, at start (an env var from the Secret): the pod templates carry its digest."""
    import tests.program

    def template(run):
        return run.named(DEPLOYMENT, "langflow-ambassador").inputs["spec"]["template"]

    def key_of(run):
        return secret_value(run.named(SECRET, "langflow-ambassador-key-langflow").inputs["stringData"])["LANGFLOW_API_KEY"]

    key = key_of(newer)
    before = template(newer)
    assert before["metadata"]["annotations"][spec.KEY_DIGEST_ANNOTATION] == spec.key_digest(key)
    sidecar = newer.outputs["ambassador_sidecar"]
    assert sidecar.value["pod_annotations"][spec.KEY_DIGEST_ANNOTATION] == spec.key_digest(key)
    assert not sidecar.secret  # a digest of a random key tells nothing of it
    monkeypatch.setattr(tests.program, "FAKE_PASSWORD", "another-generated-password-9876543210")
    rotated = run(with_langflow("1.13.0", sidecar_namespaces=["reports"]))
    new_key = key_of(rotated)
    assert new_key != key
    after = template(rotated)
    assert after["metadata"]["annotations"] == {**before["metadata"]["annotations"],
                                                spec.KEY_DIGEST_ANNOTATION: spec.key_digest(new_key)}
    assert after["spec"] == before["spec"]  # the same pods, rolled onto the new key
    assert rotated.outputs["ambassador_sidecar"].value["pod_annotations"][spec.KEY_DIGEST_ANNOTATION] == \
        spec.key_digest(new_key)


def test_the_sidecar_shape_is_an_output_with_its_config_beside_the_client(newer):
    sidecar = newer.outputs["ambassador_sidecar"].value
    assert sidecar["base_url"] == "http://127.0.0.1:15080" and sidecar["namespaces"] == ["reports"]
    container = sidecar["container"]
    assert container["image"] == "docker.io/library/haproxy:2.6.12" and [p["name"] for p in container["ports"]] == ["admin"]
    config_map = newer.named(CONFIG_MAP, "langflow-ambassador-sidecar-config-reports")
    assert config_map.inputs["metadata"] == {**config_map.inputs["metadata"], "name": "langflow-ambassador",
                                             "namespace": "reports"}
    text = config_map.inputs["data"]["haproxy.cfg"]
    # Only the client's own pod reaches it: its key never serves anyone else.
    assert "    bind 127.0.0.1:15080" in text and sidecar["pod_annotations"][spec.CONFIG_DIGEST_ANNOTATION] == spec.config_digest(text)
    assert sidecar["volume"] == {"name": spec.CONFIG_VOLUME, "configMap": {"name": "langflow-ambassador"}}
    # The reports namespace reaches Langflow's port (its sidecar calls it), and nothing else: with SSO on, the ingress
    # controller reaches only oauth2-proxy.
    langflow = policies(newer)["langflow-langflow"]["ingress"]
    assert namespace_peers(on_port(langflow)) == {"reports"}


def test_clients_call_the_ambassador_and_hold_no_key(prod):
    client = prod.outputs["client"].value
    assert client["base_url"] == "http://langflow-ambassador.langflow.svc:80"
    assert client["run_url"] == "http://langflow-ambassador.langflow.svc:80/api/v1/run/{flow_id}"
    assert client["api_key_secret"] is None and client["default_flow_id"] == "echo"
    data = prod.named(CONFIG_MAP, "langflow-client").inputs["data"]
    assert data == {"LANGFLOW_BASE_URL": "http://langflow-ambassador.langflow.svc:80", "LANGFLOW_DEFAULT_FLOW_ID": "echo"}
    assert prod.outputs["images"].value["ambassador"] == "docker.io/library/haproxy:2.6.12"


def test_client_namespaces_reach_the_ambassador_never_langflow(prod):
    pods, found = workloads(prod), policies(prod)
    ambassador = found["langflow-ambassador"]
    assert selected(ambassador["podSelector"], pods) == {"Deployment/langflow-ambassador"}
    assert namespace_peers(on_port(ambassador["ingress"], 8080)) == {"pipelines"}
    assert namespace_peers(on_port(ambassador["ingress"], 8404)) == {"monitoring"}
    assert pod_peers(ambassador["egress"], pods, "to") == {"Deployment/langflow"}
    assert "pipelines" not in namespace_peers(found["langflow-langflow"]["ingress"])
    key_job = found["langflow-ambassador-key"]
    assert selected(key_job["podSelector"], pods) == {"Job/langflow-ambassador-key"}
    assert key_job["ingress"] == [] and pod_peers(key_job["egress"], pods, "to") == {"Deployment/langflow"}
    assert {"ipBlock": {"cidr": "10.0.0.10/32"}} in [p for r in key_job["egress"] for p in r.get("to", [])]


def test_a_pod_monitor_when_the_cluster_has_the_operator_annotations_otherwise(prod):
    assert not prod.of_type(POD_MONITOR)
    with_operator = run(stack_values("prod"), cluster=FakeCluster(crds=(POD_MONITOR_CRD,)))
    monitors = {r.name: r.inputs for r in with_operator.of_type(POD_MONITOR)}
    assert set(monitors) == {"langflow-pod-monitor", "langflow-ambassador-pod-monitor"}
    pods = workloads(with_operator)
    assert selected(monitors["langflow-pod-monitor"]["spec"]["selector"], pods) == {"Deployment/langflow"}
    assert monitors["langflow-pod-monitor"]["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics"}]
    assert monitors["langflow-ambassador-pod-monitor"]["spec"]["podMetricsEndpoints"] == [{"port": "admin", "path": "/metrics"}]
    forced = run({**stack_values("prod"), "metrics": {"scrape": "pod-monitor"}})
    assert len(forced.of_type(POD_MONITOR)) == 2
    off = run({**stack_values("prod"), "metrics": {"enabled": False}})
    assert not off.of_type(POD_MONITOR)
    assert "LANGFLOW_PROMETHEUS_PORT" not in env_of(off.named(DEPLOYMENT, "langflow"))
    assert env_of(off.named(DEPLOYMENT, "langflow"))["LANGFLOW_PROMETHEUS_ENABLED"] == "false"


def test_the_rendered_config_follows_the_settings():
    config = AmbassadorConfig(enabled=True, retries={"connect_failures": 0}, rate_limit_per_client=7,
                              outlier_ejection={"consecutive_errors": 9, "check_interval_seconds": 2},
                              allowed_paths=["/api/v1/run/", "/api/v1/webhook/"])
    text = spec.haproxy_config(config, metrics=False, bind=spec.shared_bind(), langflow_host="h", langflow_port=1,
                               langflow_slots=6)
    assert "    retries 0\n    retry-on conn-failure\n" in text
    assert "error-limit 9 on-error mark-down" in text and "check inter 2s" in text
    assert "sc_http_req_rate(0) gt 7" in text and "unless { path_beg /api/v1/run/ /api/v1/webhook/ }" in text
    assert "prometheus-exporter" not in text and "monitor-uri /healthz" in text
    without_limit = spec.haproxy_config(AmbassadorConfig(enabled=True), metrics=True, bind=":1", langflow_host="h",
                                        langflow_port=1, langflow_slots=4)
    assert "stick-table" not in without_limit and "prometheus-exporter" in without_limit
    assert spec.server_slots(1) == 4 and spec.server_slots(5) == 10


@pytest.mark.parametrize(("values", "key", "fragment"), [
    ({"ambassador": {"enabled": True, "timeouts": {"connect_seconds": 10, "response_seconds": 5}}},
     "ambassador.timeouts.response_seconds", "not longer than connect_seconds"),
    ({"ambassador": {"enabled": True, "rate_limit_per_client": 0}}, "ambassador.rate_limit_per_client",
     "would refuse every request"),
    ({"ambassador": {"enabled": True}, "network_policies": {"api_client_namespaces": ["pipelines"]}},
     "network_policies.api_client_namespaces[0]", "move it to ambassador.client_namespaces"),
    ({"ambassador": {"client_namespaces": ["pipelines"]}}, "ambassador.client_namespaces",
     "only used with the ambassador on"),
    ({"ambassador": {"enabled": True, "client_namespaces": ["a"], "sidecar_namespaces": ["a"]}},
     "ambassador.sidecar_namespaces[0]", "in client_namespaces too"),
    ({"ambassador": {"enabled": True, "client_namespaces": ["Bad_Name"]}}, "ambassador.client_namespaces[0]",
     "namespace name"),
    ({"ambassador": {"enabled": True, "admin_port": 8080}}, "ambassador.admin_port", "serves clients"),
    ({"ambassador": {"enabled": True, "image": {"tag": "latest"}}}, "ambassador.image.tag", "moving tag"),
    ({"ambassador": {"enabled": True, "image": {"tag": "2.2.0"}}}, "ambassador.image.tag", "too old"),
    ({"ambassador": {"enabled": True, "allowed_paths": ["/admin/"]}}, "ambassador.allowed_paths[0]",
     "prefix of Langflow's API"),
    ({"ambassador": {"enabled": True, "resources": {"limits": {"memory": "8Mi"}}}}, "ambassador.resources.limits.memory",
     "too little for a proxy"),
    ({"ambassador": {"enabled": True, "retries": {"connect_failures": 9}}}, "ambassador.retries.connect_failures", ""),
    ({"ambassador": {"enabled": True, "timeouts": {"response_seconds": 0}}}, "ambassador.timeouts.response_seconds", ""),
    ({"ambassador": {"enabled": True, "cluster_domain": "Not A Domain"}}, "ambassador.cluster_domain", "cluster domain"),
    ({"ambassador": {"enabled": True, "color": "blue"}}, "ambassador.color", ""),
    ({"metrics": {"langflow_port": 7860}}, "metrics.langflow_port", "Langflow's own port"),
    ({"metrics": {"scrape": "sometimes"}}, "metrics.scrape", ""),
])
def test_bad_ambassador_and_metrics_config_names_the_key(values, key, fragment):
    assert_refused(values, key, fragment)


def test_the_key_job_s_open_api_egress_is_a_warning_until_the_api_servers_are_declared():
    from settings.loader import parse_config
    from settings.validation import warnings
    values = stack_values("prod")
    values["network_policies"]["egress"].pop("kubernetes_api")
    found = [w for w in warnings(parse_config(values)) if "kubernetes_api" in w]
    assert len(found) == 1 and "443 and 6443 at any address" in found[0]
    newer = {**values, "image": {**values["image"], "tag": "1.13.0"}}
    assert not [w for w in warnings(parse_config(newer)) if "kubernetes_api" in w]  # no key Job there
