"""The workload's decisions, as plain data."""

from __future__ import annotations

import json

import pytest

from components import common, langflow_spec as spec
from settings.loader import parse_config

URL_DB = {"database": {"type": "url", "url_secret": {"name": "langflow-db", "key": "uri"}}}


def env_of(config, secret="creds") -> dict:
    out = {}
    for item in spec.container_env(config, secret):
        assert item["name"] not in out, f"{item['name']} set twice"
        out[item["name"]] = item.get("value", item.get("valueFrom"))
    return out


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ({}, "langflowai/langflow:1.6.4"),
        ({"tag": "1.6.5", "digest": "sha256:" + "a" * 64}, "langflowai/langflow:1.6.5@sha256:" + "a" * 64),
        ({"registry": "registry.internal:5000"}, "registry.internal:5000/langflowai/langflow:1.6.4"),
        ({"registry": "mirror.local", "repository": "docker.io/langflowai/langflow"}, "mirror.local/langflowai/langflow:1.6.4"),
        ({"repository": "localhost:5000/lf"}, "localhost:5000/lf:1.6.4"),
    ],
)
def test_image_reference_is_pinned_and_relocatable(image, expected):
    assert parse_config({"image": image}).image.reference() == expected


def test_env_for_sqlite_with_login_off():
    env = env_of(parse_config({}))
    assert env["LANGFLOW_DATABASE_URL"] == "sqlite:////app/data/langflow.db"
    assert env["LANGFLOW_CONFIG_DIR"] == "/app/data"
    assert env["LANGFLOW_AUTO_LOGIN"] == "true"
    assert "LANGFLOW_SUPERUSER" not in env and "LANGFLOW_SUPERUSER_PASSWORD" not in env
    # The key encrypts stored credentials even with login off.
    assert env["LANGFLOW_SECRET_KEY"] == {"secretKeyRef": {"name": "creds", "key": "LANGFLOW_SECRET_KEY"}}
    assert env["LANGFLOW_PORT"] == "7860" and env["LANGFLOW_HOST"] == "0.0.0.0"
    assert env["LANGFLOW_ALEMBIC_LOG_FILE"].startswith("/tmp/")
    assert env["LANGFLOW_LOAD_FLOWS_PATH"] == "/app/flows"
    assert "LANGFLOW_EVENT_DELIVERY" not in env
    assert "NUM_WORKERS" not in env and env["LANGFLOW_WORKERS"] == "1"


def test_env_with_login_on_and_database_url():
    config = parse_config({
        **URL_DB, "replicas": 2, "storage": {"access_mode": "ReadWriteMany"},
        "auth": {"enabled": True, "superuser": "admin", "new_user_is_active": True, "access_token_expire_seconds": 60},
        "runtime": {"backend_only": True}, "flows": {"source": "none"},
        "extra_env": [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "openai"}}}],
    })
    env = env_of(config)
    assert env["LANGFLOW_DATABASE_URL"] == {"secretKeyRef": {"name": "langflow-db", "key": "uri"}}
    assert env["LANGFLOW_AUTO_LOGIN"] == "false"
    assert env["LANGFLOW_SUPERUSER"] == "admin"
    assert env["LANGFLOW_SUPERUSER_PASSWORD"] == {"secretKeyRef": {"name": "creds", "key": "LANGFLOW_SUPERUSER_PASSWORD"}}
    assert env["LANGFLOW_NEW_USER_IS_ACTIVE"] == "true"
    assert env["LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS"] == "60"
    assert env["LANGFLOW_BACKEND_ONLY"] == "true"
    assert env["LANGFLOW_EVENT_DELIVERY"] == "direct"  # several replicas
    assert "LANGFLOW_LOAD_FLOWS_PATH" not in env
    assert env["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "llm", "key": "openai"}}


def test_probes():
    probes = spec.probes()
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health_check"
    startup = probes["startupProbe"]
    # Room for a slow first migration (17 to 40 s measured), yet a hung start ends within 5 minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] == 300


def test_security_contexts_meet_pod_security_restricted():
    pod, container = spec.pod_security_context(), spec.container_security_context()
    assert pod["runAsNonRoot"] and pod["runAsUser"] != 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["fsGroup"] == 1000
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True


def test_every_written_path_is_a_volume():
    config = parse_config({})
    mounts = {m["mountPath"]: m["name"] for m in spec.volume_mounts(config)}
    assert mounts == {"/app/data": "data", "/tmp": "tmp", "/app/flows": "flows"}
    volumes = {v["name"]: v for v in spec.volumes(config, "flows-cm")}
    assert volumes["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": "langflow-data"}}
    # Synced flows (the default): the flow sync's ConfigMap, by its fixed name, which a first pod may start without.
    assert volumes["flows"]["configMap"] == {"name": "langflow-flows", "optional": True}
    assert "emptyDir" in volumes["tmp"]
    restarted = {v["name"]: v for v in spec.volumes(parse_config({"flows": {"update": "restart"}}), "flows-cm")}
    assert restarted["flows"]["configMap"] == {"name": "flows-cm"}


def test_volumes_for_flows_on_a_claim_and_no_storage():
    config = parse_config({**URL_DB, "storage": {"enabled": False}, "flows": {"source": "claim", "claim_name": "flows-pvc"}})
    volumes = {v["name"]: v for v in spec.volumes(config, None)}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert volumes["flows"]["persistentVolumeClaim"] == {"claimName": "flows-pvc", "readOnly": True}


@pytest.mark.parametrize(
    ("values", "strategy"),
    [
        ({}, {"type": "Recreate"}),  # SQLite on ReadWriteOnce
        ({**URL_DB, "storage": {"access_mode": "ReadWriteOncePod"}}, {"type": "Recreate"}),
        ({**URL_DB, "storage": {"access_mode": "ReadWriteMany"}},
         {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        ({**URL_DB, "storage": {"enabled": False}},
         {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}),
        # SQLite allows one writer, even on a shared volume: never two pods on it.
        ({"storage": {"access_mode": "ReadWriteMany"}}, {"type": "Recreate"}),
    ],
)
def test_update_strategy_never_waits_on_a_held_volume(values, strategy):
    assert spec.update_strategy(parse_config(values)) == strategy


def test_several_replicas_prefer_different_nodes_unless_affinity_is_given():
    spread = spec.affinity(parse_config({**URL_DB, "replicas": 2, "storage": {"access_mode": "ReadWriteMany"}}))
    term = spread["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert spec.affinity(parse_config({})) == {}
    given = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "pool", "operator": "Exists"}]}}]}}
    assert spec.affinity(parse_config({**URL_DB, "replicas": 2, "storage": {"access_mode": "ReadWriteMany"}, "affinity": given})) == given


def test_deployment_manifest():
    config = parse_config({
        "image": {"pull_secrets": ["regcred"]}, "node_selector": {"pool": "ai"},
        "tolerations": [{"key": "ai", "operator": "Exists", "effect": "NoSchedule"}],
        "labels": {"team": "ml"}, "annotations": {"owner": "ml"},
    })
    manifest = spec.deployment_manifest(config, credentials_secret="creds", flows_config_map="cm", flows_digest="abc")
    pod = manifest["spec"]["template"]["spec"]
    assert manifest["metadata"]["name"] == "langflow" and manifest["metadata"]["namespace"] == "langflow"
    assert manifest["spec"]["replicas"] == 1
    assert manifest["spec"]["selector"]["matchLabels"] == spec.selector_labels(config)
    template_meta = manifest["spec"]["template"]["metadata"]
    assert template_meta["labels"]["team"] == "ml"
    assert template_meta["annotations"] == {"owner": "ml", spec.FLOWS_DIGEST_ANNOTATION: "abc",
                                            # Prometheus finds the metrics port without the operator too.
                                            "prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                                            "prometheus.io/path": "/metrics"}
    assert manifest["metadata"]["annotations"]["owner"] == "ml"
    assert pod["enableServiceLinks"] is False  # known failure 1: LANGFLOW_PORT=tcp://...
    assert pod["automountServiceAccountToken"] is False
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["nodeSelector"] == {"pool": "ai"}
    assert pod["tolerations"] == [{"key": "ai", "operator": "Exists", "effect": "NoSchedule"}]
    assert "affinity" not in pod
    (container,) = pod["containers"]
    # Metrics on a port of their own, which the Service (port http only) never exposes.
    assert container["ports"] == [{"name": "http", "containerPort": 7860, "protocol": "TCP"},
                                  {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "3Gi"}}


def test_only_the_workload_carries_the_release_version():
    one, two = parse_config({"image": {"tag": "1.6.4"}}), parse_config({"image": {"tag": "1.6.5"}})
    assert spec.selector_labels(one) == spec.selector_labels(two)
    # A release must not touch the volume, Secrets or Service.
    assert spec.data_claim_manifest(one) == spec.data_claim_manifest(two)
    assert spec.service_manifest(one) == spec.service_manifest(two)
    deployment = spec.deployment_manifest(two, credentials_secret="c")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.6.5"
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "1.6.5"


@pytest.mark.parametrize("replicas", [1, 3])
def test_up_waits_until_every_pod_is_new_and_available(replicas):
    values = {"replicas": replicas}
    if replicas > 1:
        values.update(URL_DB, storage={"access_mode": "ReadWriteMany"})
    annotations = spec.deployment_manifest(parse_config(values), credentials_secret="c")["metadata"]["annotations"]
    assert json.loads(annotations["pulumi.com/waitFor"]) == [
        f"jsonpath={{.status.updatedReplicas}}={replicas}",
        f"jsonpath={{.status.availableReplicas}}={replicas}",
        f"jsonpath={{.status.replicas}}={replicas}",
    ]
    assert int(annotations["pulumi.com/timeoutSeconds"]) > 300  # beyond the startup probe's allowance


def test_a_rollout_is_bounded_by_its_timeout_and_keeps_a_history():
    manifest = spec.deployment_manifest(parse_config({"rollout": {"timeout_seconds": 20}}), credentials_secret="c")
    assert manifest["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "20"
    assert manifest["spec"]["progressDeadlineSeconds"] == 20
    assert manifest["spec"]["revisionHistoryLimit"] == 10


def test_every_workload_is_annotated_with_the_image_it_runs():
    config = parse_config({**URL_DB, "image": {"registry": "registry.internal:5000", "digest": "sha256:" + "a" * 64}})
    image = "registry.internal:5000/langflowai/langflow:1.6.4@sha256:" + "a" * 64
    for manifest in (spec.deployment_manifest(config, credentials_secret="c"),
                     spec.init_job_manifest(config, credentials_secret="c")):
        assert manifest["metadata"]["annotations"][spec.IMAGE_ANNOTATION] == image
        assert manifest["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_service_and_client_settings():
    config = parse_config({"namespace": "lf", "service": {"port": 80, "annotations": {"a": "b"}}})
    service = spec.service_manifest(config)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    # No endpoint-settling wait (10 s on every create): the Deployment's rollout await covers exactly the pods
    # the Service selects.
    assert service["metadata"]["annotations"] == {"a": "b", "pulumi.com/skipAwait": "true"}
    pod_labels = spec.deployment_manifest(config, credentials_secret="c")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    balanced = common.service({"name": "lf"}, {"type": "LoadBalancer"})
    assert "annotations" not in balanced["metadata"]  # waits for the load balancer's address
    assert spec.client_settings(config, "echo") == {
        "LANGFLOW_BASE_URL": "http://langflow.lf.svc:80",
        "LANGFLOW_API_KEY_SECRET": "langflow-api-key",
        "LANGFLOW_API_KEY_SECRET_KEY": "LANGFLOW_API_KEY",
        "LANGFLOW_DEFAULT_FLOW_ID": "echo",
    }
    assert "LANGFLOW_DEFAULT_FLOW_ID" not in spec.client_settings(config, None)


def test_data_claim_has_a_fixed_name():
    claim = spec.data_claim_manifest(parse_config({"storage": {"size": "5Gi", "storage_class": "fast"}}))
    assert claim["metadata"]["name"] == "langflow-data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}, "storageClassName": "fast"}


def test_namespace_enforces_pod_security_restricted():
    metadata = spec.namespace_manifest("lf", {"a": "b"}, "langflow/dev")
    assert metadata["labels"]["pod-security.kubernetes.io/enforce"] == "restricted" and metadata["labels"]["a"] == "b"
    assert metadata["annotations"] == {"langflow.org/stack": "langflow/dev"}  # who created it


def test_flows_config_map_is_left_to_pulumi_to_name():
    manifest = spec.flows_config_map_manifest(parse_config({}), {"echo.json": "{}"})
    assert "name" not in manifest["metadata"] and manifest["data"] == {"echo.json": "{}"}


@pytest.mark.parametrize(("tag", "auth", "expected"), [
    ("1.6.4", True, None), ("1.9.3", True, None), ("1.10.0", True, "true"), ("1.13.0", True, "true"),
    ("1.13.0", False, None),
])
def test_component_code_is_admin_only_with_login_where_langflow_has_the_setting(tag, auth, expected):
    env = env_of(parse_config({"image": {"tag": tag}, "auth": {"enabled": auth}}))
    assert env.get("LANGFLOW_CUSTOM_COMPONENT_ADMIN_ONLY") == expected


def test_a_rolling_pod_serves_on_until_it_is_out_of_the_endpoints_and_dns_before_it_stops():
    rolling = parse_config({**URL_DB, "replicas": 2, "storage": {"access_mode": "ReadWriteMany"}})
    assert spec.update_strategy(rolling)["type"] == "RollingUpdate"
    (container,) = spec.deployment_manifest(rolling, credentials_secret="c")["spec"]["template"]["spec"]["containers"]
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", str(spec.PRE_STOP_SECONDS)]}}}
    # Longer than the cluster DNS TTL (5 s) plus the ambassador's resolver hold; within the grace period.
    hold = int(next(line.split()[-1].rstrip("s") for line in ambassador_config_lines() if "hold valid" in line))
    assert spec.PRE_STOP_SECONDS > 5 + hold
    assert spec.PRE_STOP_SECONDS < spec.deployment_manifest(rolling, credentials_secret="c")[
        "spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # The init Job ends by itself, and a Recreate rollout has no other pod to move traffic to.
    (init,) = spec.init_job_manifest(rolling, credentials_secret="c")["spec"]["template"]["spec"]["containers"]
    assert "lifecycle" not in init
    recreate = parse_config({"namespace": "lf"})
    assert spec.update_strategy(recreate)["type"] == "Recreate"
    (single,) = spec.deployment_manifest(recreate, credentials_secret="c")["spec"]["template"]["spec"]["containers"]
    assert "lifecycle" not in single


def ambassador_config_lines() -> list[str]:
    from components.ambassador import spec as ambassador_spec
    config = parse_config({**URL_DB, "replicas": 2, "storage": {"access_mode": "ReadWriteMany"}, "ambassador": {"enabled": True}})
    return ambassador_spec.config_text(config.ambassador, spec.ambassador_upstream(config), sidecar=False).splitlines()
