"""What passes through to Kubernetes and Langflow: each class of bad input, refused with its key and a fix."""

from __future__ import annotations

from decimal import Decimal

import pytest

from components import langflow_spec as spec
from settings import kube
from settings.loader import parse_config
from settings.managed import MANAGED_ENV
from tests.test_config import assert_refused, problems

URL_DB = {"database": {"type": "url", "url_secret": {"name": "langflow-db"}}}


# --- 1. the program's own settings cannot be overridden ---------------------------------

@pytest.mark.parametrize("name", [
    "langflow_auto_login", "Langflow_Secret_Key", "LANGFLOW_SUPERUSER_PASSWORD", "langflow_database_url",
    "LangFlow_Port", "langflow_config_dir", "LANGFLOW_EVENT_DELIVERY", "HOME", "langflow_load_flows_path",
])
def test_extra_env_cannot_override_a_managed_setting_in_any_case(name):
    assert_refused({"auth": {"enabled": True}, "extra_env": [{"name": name, "value": "true"}]},
                   "extra_env[0].name", f"read by Langflow as {name.upper()}")


@pytest.mark.parametrize(("name", "read_as"), [
    # `langflow run` copies every variable whose name without "LANGFLOW_" is an auth setting.
    ("AUTO_LOGIN", "LANGFLOW_AUTO_LOGIN"), ("SECRET_KEY", "LANGFLOW_SECRET_KEY"), ("SUPERUSER", "LANGFLOW_SUPERUSER"),
    ("AUTO_LANGFLOW_LOGIN", "LANGFLOW_AUTO_LOGIN"), ("CONFIG_DIR", "LANGFLOW_CONFIG_DIR"),
    # Auth settings the program does not set today are still not the env's to change.
    ("LANGFLOW_EXTERNAL_AUTH_TRUSTED_JWT_DECODE", "LANGFLOW_EXTERNAL_AUTH_TRUSTED_JWT_DECODE"),
    ("langflow_enable_signup", "LANGFLOW_ENABLE_SIGNUP"), ("skip_auth_auto_login", "LANGFLOW_SKIP_AUTH_AUTO_LOGIN"),
    ("ALGORITHM", "LANGFLOW_ALGORITHM"),
])
def test_extra_env_cannot_reach_langflow_s_auth_settings_by_any_name(name, read_as):
    assert_refused({"auth": {"enabled": True}, "extra_env": [{"name": name, "value": "true"}]},
                   "extra_env[0].name", f"read by Langflow as {read_as}")


@pytest.mark.parametrize("name", ["PORT", "HOST", "auto_login", "Secret_Key", "MY_LANGFLOW_SETTING", "LOG_LEVEL"])
def test_names_langflow_does_not_read_as_a_managed_setting_pass(name):
    assert parse_config({"extra_env": [{"name": name, "value": "x"}]}).extra_env[0].name == name


def test_extra_env_cannot_override_a_managed_setting_from_a_secret_either():
    assert_refused({"extra_env": [{"name": "langflow_secret_key", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
                   "extra_env[0].name", "auth.secret_key")


def test_managed_names_are_refused_whether_or_not_this_stack_sets_them():
    # LANGFLOW_SUPERUSER is only set with login on; with it off it must not sneak in either.
    assert_refused({"extra_env": [{"name": "LANGFLOW_SUPERUSER", "value": "x"}]}, "extra_env[0].name", "auth.superuser")


def test_extra_env_names_differing_only_in_case_are_one_variable_to_langflow():
    assert_refused({"extra_env": [{"name": "LANGFLOW_X", "value": "1"}, {"name": "langflow_x", "value": "2"}]},
                   "extra_env[1].name", "already set by extra_env[0]")


@pytest.mark.parametrize("stack_auth", [False, True])
def test_every_variable_the_workload_sets_is_managed(stack_auth):
    values = {"auth": {"enabled": stack_auth}, "replicas": 2, **URL_DB, "storage": {"access_mode": "ReadWriteMany"}}
    names = {e["name"] for e in spec.container_env(parse_config(values), "creds")}
    assert names <= set(MANAGED_ENV), names - set(MANAGED_ENV)


def test_unmanaged_langflow_settings_and_llm_keys_pass():
    config = parse_config({"extra_env": [
        {"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "openai"}}},
        {"name": "LANGFLOW_MAX_ITEMS_LENGTH", "value": "200"},
    ]})
    assert [e.name for e in config.extra_env] == ["OPENAI_API_KEY", "LANGFLOW_MAX_ITEMS_LENGTH"]


# --- 2. reserved namespaces ------------------------------------------------------------

@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "kube-anything"])
@pytest.mark.parametrize("create", [True, False])
def test_kube_namespaces_are_always_refused(namespace, create):
    assert_refused({"namespace": namespace, "create_namespace": create}, "namespace", "reserved")


def test_default_namespace_cannot_be_created_but_can_be_used_as_it_is():
    assert_refused({"namespace": "default"}, "namespace", "create_namespace: false")
    assert parse_config({"namespace": "default", "create_namespace": False}).namespace == "default"


# --- 3. resources ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", Decimal("0.5")), ("1", Decimal(1)), ("1Gi", Decimal(2**30)), ("1.5Gi", Decimal(3 * 2**29)),
     ("1e3", Decimal(1000)), ("1E-3", Decimal("0.001")), ("+2k", Decimal(2000)), (".5", Decimal("0.5")),
     ("5.", Decimal(5)), ("100n", Decimal("1E-7")), (1, Decimal(1)), (0.25, Decimal("0.25")), ("512m", Decimal("0.512"))],
)
def test_quantities_parse_exactly(text, value):
    assert kube.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["1Gb", "1 Gi", "1KI", "1K", "Gi", "", "1.2.3", "1e", "0x10", "1_000", "NaN",
                                  "Infinity", "1Gi ", "--1", True, None, [1]])
def test_bad_quantities_are_refused(text):
    with pytest.raises(ValueError):
        kube.parse_quantity(text)


def test_unquoted_numbers_are_quantities():
    config = parse_config({"resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 1.5, "memory": 4294967296}}})
    assert config.resources.requests["cpu"] == "1"
    assert config.resources.limits == {"cpu": "1.5", "memory": "4294967296"}


def test_a_limit_alone_below_the_default_request_is_refused_naming_the_request():
    found = problems({"resources": {"limits": {"memory": "2Gi", "cpu": "250m"}}})
    assert found == [
        "langflow:resources.requests.cpu: the default request 500m is more than resources.limits.cpu (250m), which "
        "Kubernetes refuses; set resources.requests.cpu to at most 250m, or raise the limit"
    ]


def test_the_issue_example_gets_both_reasons():
    found = problems({"resources": {"limits": {"memory": "512Mi"}}})
    assert [p.split(": ")[0] for p in found] == ["langflow:resources.limits.memory", "langflow:resources.requests.memory"]
    assert "the default request 2Gi is more than resources.limits.memory (512Mi)" in found[1]


def test_a_request_above_its_limit_is_refused():
    assert_refused({"resources": {"requests": {"memory": "3Gi"}, "limits": {"memory": "2Gi"}}},
                   "resources.requests.memory", "the request 3Gi is more than resources.limits.memory (2Gi)")


def test_requests_are_compared_by_value_not_by_text():
    config = parse_config({"resources": {"requests": {"cpu": "1", "memory": "2048Mi"}, "limits": {"cpu": "1000m", "memory": "2Gi"}}})
    assert config.resources.requests["memory"] == "2048Mi"


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"requests": {"memory": "512m"}}, "resources.requests.memory", "'m' means milli"),
        ({"limits": {"memory": "2.5"}}, "resources.limits.memory", "whole number of bytes"),
        ({"limits": {"ephemeral-storage": "100m"}}, 'resources.limits["ephemeral-storage"]', "'m' means milli"),
        ({"requests": {"cpu": "0"}}, "resources.requests.cpu", "more than 0"),
        ({"requests": {"cpu": "-1"}}, "resources.requests.cpu", "more than 0"),
        ({"requests": {"cpu": "100u"}}, "resources.requests.cpu", "smallest CPU amount"),
    ],
)
def test_quantities_that_kubernetes_would_take_literally_are_refused(values, key, fragment):
    found = problems({"resources": values})
    assert any(p.startswith(f"langflow:{key}: ") and fragment in p for p in found), found


@pytest.mark.parametrize("size", ["0", "-1Gi", "1", "512m", "10Mi"])
def test_storage_sizes_that_kubernetes_refuses_or_that_cannot_hold_data(size):
    assert_refused({"storage": {"size": size}}, "storage.size", "e.g. 1Gi")


def test_storage_size_may_be_an_unquoted_number():
    assert parse_config({"storage": {"size": 2147483648}}).storage.size == "2147483648"


# --- 4. labels and annotations -----------------------------------------------------------------

BAD_LABELS = [
    ({"bad key": "v"}, 'labels["bad key"]', "not a valid label key"),
    ({"a/b/c": "v"}, 'labels["a/b/c"]', "must be a DNS subdomain"),
    ({"Example.com/team": "v"}, 'labels["Example.com/team"]', "must be a DNS subdomain"),
    ({"/team": "v"}, 'labels["/team"]', "must not be empty"),
    ({"x" * 64: "v"}, f"labels.{'x' * 64}", "1 to 63"),
    ({"team": "y" * 64}, "labels.team", "at most 63"),
    ({"team": "-ml"}, "labels.team", "starting and ending"),
    ({"team": "a b"}, "labels.team", "not a valid label value"),
    ({"app.kubernetes.io/name": "mine"}, 'labels["app.kubernetes.io/name"]', "set by the program"),
    ({"pod-security.kubernetes.io/enforce": "privileged"}, 'labels["pod-security.kubernetes.io/enforce"]', "set by the program"),
]


@pytest.mark.parametrize(("labels", "key", "fragment"), BAD_LABELS)
def test_labels_follow_kubernetes_syntax(labels, key, fragment):
    assert_refused({"labels": labels}, key, fragment)


@pytest.mark.parametrize(("labels", "key", "fragment"), BAD_LABELS[:8])
def test_node_selector_follows_label_syntax(labels, key, fragment):
    assert_refused({"node_selector": labels}, key.replace("labels", "node_selector", 1), fragment)


@pytest.mark.parametrize("key", ["annotations", "service.annotations"])
@pytest.mark.parametrize(
    ("annotations", "sub", "fragment"),
    [
        ({"bad key": "v"}, '["bad key"]', "not a valid annotation key"),
        ({"pulumi.com/skipAwait": "true"}, '["pulumi.com/skipAwait"]', "steer how the program deploys"),
        ({"langflow.org/flows-sha256": "x"}, '["langflow.org/flows-sha256"]', "cannot be set from config"),
        ({"big": "x" * (256 * 1024)}, "", "more than Kubernetes allows"),
    ],
)
def test_annotations_follow_kubernetes_syntax(key, annotations, sub, fragment):
    section, _, field = key.rpartition(".")
    values = {section: {field: annotations}} if section else {key: annotations}
    assert_refused(values, key + sub, fragment)


def test_annotations_allow_free_text_values():
    config = parse_config({"annotations": {"example.com/owner": "Team ML <ml@example.com>", "note": ""}})
    assert config.annotations["note"] == ""


def test_a_long_valid_tag_never_makes_an_invalid_version_label():
    tag = "1.6.4-" + "a" * 62  # a valid 68-character tag
    config = parse_config({"image": {"tag": tag}})
    deployment = spec.deployment_manifest(config, credentials_secret="creds")
    version = deployment["metadata"]["labels"]["app.kubernetes.io/version"]
    assert kube.label_value_problem(version) is None and tag.startswith(version)
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == version
    assert deployment["metadata"]["annotations"][spec.IMAGE_ANNOTATION] == f"langflowai/langflow:{tag}"


# --- 5. Kubernetes objects passed through ----------------------------------------------------

@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        # Schema: unknown fields, wrong types, required fields.
        ({"affinity": {"nodeAfinity": {}}}, "affinity", "unknown field 'nodeAfinity'"),
        ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"topologyKey": "x"}}}},
         "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution", "must be of type array"),
        ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}},
         "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", "required"),
        ({"tolerations": [{"key": "a", "opertor": "Exists"}]}, "tolerations[0]", "unknown field 'opertor'"),
        ({"tolerations": [{"key": "a", "tolerationSeconds": "60", "effect": "NoExecute"}]}, "tolerations[0].tolerationSeconds", "integer"),
        ({"extra_volumes": [{"name": "s", "secret": {"secretname": "x"}}]}, "extra_volumes[0].secret", "unknown field 'secretname'"),
        ({"extra_volumes": [{"secret": {"secretName": "x"}}]}, "extra_volumes[0].name", "required"),
        ({"extra_env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "x"}}}]}, "extra_env[0].valueFrom.secretKeyRef.key", "required"),
        ({"extra_env": [{"name": "A", "valueFrom": {"secretRef": {"name": "x"}}}]}, "extra_env[0].valueFrom", "unknown field 'secretRef'"),
        ({"extra_volumes": [{"name": "a", "emptyDir": {}}], "extra_volume_mounts": [{"name": "a", "mountpath": "/x"}]},
         "extra_volume_mounts[0]", "unknown field 'mountpath'"),
        ({"extra_volumes": [{"name": "a", "emptyDir": {}}], "extra_volume_mounts": [{"name": "a"}]},
         "extra_volume_mounts[0].mountPath", "required"),
        # Semantic rules the schema cannot express.
        ({"tolerations": [{"operator": "Equal", "value": "x"}]}, "tolerations[0].operator", "without a key must use operator Exists"),
        ({"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}]}, "tolerations[0].value", "remove value"),
        ({"tolerations": [{"key": "a", "value": "x", "tolerationSeconds": 60}]}, "tolerations[0].tolerationSeconds", "NoExecute"),
        ({"tolerations": [{"key": "bad key", "operator": "Exists"}]}, "tolerations[0].key", "not a valid taint key"),
        ({"tolerations": [{"key": "a", "value": "b c"}]}, "tolerations[0].value", "not a valid label value"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]}, "tolerations[0].operator", "use Exists or Equal"),
        ({"tolerations": [{"key": "gpu", "effect": "NoRun"}]}, "tolerations[0].effect", "NoSchedule"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
         "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", "at least one"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "In"}]}]}}}},
         "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
         "at least one value"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "Exists", "values": ["a"]}]}]}}}},
         "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
         "takes no values"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["many"]}]}]}}}},
         "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
         "one whole number"),
        ({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}]}}},
         "affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", "1 to 100"),
        ({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": ""}]}}},
         "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", "required"),
        ({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "zone", "labelSelector": {"matchLabels": {"app": "a b"}}}]}}},
         "affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels.app", "label value"),
        ({"extra_volumes": [{"name": "Bad_Name", "emptyDir": {}}]}, "extra_volumes[0].name", "not a valid volume name"),
        ({"extra_volumes": [{"name": "data", "emptyDir": {}}]}, "extra_volumes[0].name", "volume of the program's own"),
        ({"extra_volumes": [{"name": "a", "secret": {"secretName": "s"}, "emptyDir": {}}]}, "extra_volumes[0]", "exactly one source"),
        ({"extra_volumes": [{"name": "a", "hostPath": {"path": "/"}}]}, "extra_volumes[0].hostPath", "Pod Security 'restricted'"),
        ({"extra_volumes": [{"name": "a", "secret": {}}]}, "extra_volumes[0].secret.secretName", "required"),
        ({"extra_volumes": [{"name": "a", "configMap": {"name": "c", "items": [{"key": "k", "path": "../etc"}]}}]},
         "extra_volumes[0].configMap.items[0].path", "'..'"),
        ({"extra_volumes": [{"name": "a", "secret": {"secretName": "s", "defaultMode": 1000}}]},
         "extra_volumes[0].secret.defaultMode", "0777"),
        ({"extra_volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": ""}}]},
         "extra_volumes[0].persistentVolumeClaim.claimName", "required"),
        ({"extra_volumes": [{"name": "a", "emptyDir": {"sizeLimit": "lots"}}]}, "extra_volumes[0].emptyDir.sizeLimit", "quantity"),
        ({"extra_volumes": [{"name": "a", "projected": {"sources": []}}]}, "extra_volumes[0].projected.sources", "at least one"),
        ({"extra_volumes": [{"name": "a", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}}]},
         "extra_volumes[0].ephemeral.volumeClaimTemplate.spec.resources.requests.storage", "storage request"),
        ({"extra_env": [{"name": "A", "valueFrom": {}}]}, "extra_env[0].valueFrom", "exactly one of"),
        ({"extra_env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}]},
         "extra_env[0].valueFrom.fieldRef.fieldPath", "metadata.name"),
        ({"extra_env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "Bad", "key": "k"}}}]},
         "extra_env[0].valueFrom.secretKeyRef.name", "not a valid Secret name"),
        # Found by throwing mutated inputs at the API server (tests/integration/test_dry_run.py's judge).
        ({"extra_env": [{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v2", "fieldPath": "status.podIP"}}}]},
         "extra_env[0].valueFrom.fieldRef.apiVersion", "only pod API version is v1"),
        ({"extra_env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1Mi"}}}]},
         "extra_env[0].valueFrom.resourceFieldRef.divisor", "use one of 1m, 1"),
        ({"extra_env": [{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "x"}}}]},
         "extra_env[0].valueFrom.resourceFieldRef.divisor", "not a divisor"),
        ({"extra_volumes": [{"name": "d", "downwardAPI": {"items": [
            {"path": "m", "resourceFieldRef": {"resource": "limits.memory"}}]}}]},
         "extra_volumes[0].downwardAPI.items[0].resourceFieldRef.containerName", "required in a volume"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["Node_1"]}]}]}}}},
         "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]",
         "not a valid node name"),
        ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["-1"]}]}]}}}},
         "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
         "0 or more"),
        ({"extra_volumes": [{"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {
            "accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "1Gi"}}}}}}]},
         "extra_volumes[0].ephemeral.volumeClaimTemplate.spec.accessModes", "ReadWriteOnce"),
        ({"extra_volumes": [{"name": "a", "emptyDir": {}}], "extra_volume_mounts": [
            {"name": "a", "mountPath": "/x", "readOnly": True, "recursiveReadOnly": "Always"}]},
         "extra_volume_mounts[0].recursiveReadOnly", "use Disabled, Enabled or IfPossible"),
        ({"extra_volumes": [{"name": "j", "projected": {"sources": [
            {"secret": {"name": "a", "items": [{"key": "k", "path": "x"}]}},
            {"serviceAccountToken": {"path": "./x"}}]}}]},
         "extra_volumes[0].projected.sources[1]", "also written by sources[0]"),
    ],
)
def test_pass_through_objects_are_checked_against_the_api(values, key, fragment):
    found = problems(values)
    assert any(p.startswith(f"langflow:{key}: ") and fragment in p for p in found), found


VOLUME = {"extra_volumes": [{"name": "certs", "secret": {"secretName": "ca"}}]}


@pytest.mark.parametrize(
    ("mounts", "key", "fragment"),
    [
        ([{"name": "certs", "mountPath": "/etc/certs"}, {"name": "certs", "mountPath": "/etc/./certs/"}],
         "extra_volume_mounts[1].mountPath", "already mounted by extra_volume_mounts[0]"),
        ([{"name": "certs", "mountPath": "/app/./data/x"}], "extra_volume_mounts[0].mountPath", "overlaps /app/data"),
        ([{"name": "certs", "mountPath": "//tmp"}], "extra_volume_mounts[0].mountPath", "overlaps /tmp"),
        ([{"name": "certs", "mountPath": "/"}], "extra_volume_mounts[0].mountPath", "overlaps"),
        ([{"name": "certs", "mountPath": "/etc/certs", "subPath": "../../etc"}], "extra_volume_mounts[0].subPath", "'..'"),
        ([{"name": "certs", "mountPath": "/etc/certs", "subPath": "/abs"}], "extra_volume_mounts[0].subPath", "relative"),
        ([{"name": "certs", "mountPath": "/etc/certs", "mountPropagation": "Bidirectional"}],
         "extra_volume_mounts[0].mountPropagation", "privileged"),
        ([{"name": "nope", "mountPath": "/etc/certs"}], "extra_volume_mounts[0].name", "no extra volume named 'nope'"),
        ([{"name": "certs", "mountPath": "etc/certs"}], "extra_volume_mounts[0].mountPath", "absolute path"),
    ],
)
def test_mount_paths_are_compared_after_normalisation(mounts, key, fragment):
    assert_refused({**VOLUME, "extra_volume_mounts": mounts}, key, fragment)


def test_every_problem_in_one_pass_through_object_is_reported():
    found = problems({"tolerations": [{"key": "a", "operator": "Exists", "value": "x"}, {"key": "b", "effect": "Never"}],
                      "extra_volumes": [{"name": "a", "secret": {}}, {"name": "a", "configMap": {}}]})
    keys = [p.split(": ")[0] for p in found]
    assert keys == ["langflow:tolerations[0].value", "langflow:tolerations[1].effect",
                    "langflow:extra_volumes[0].name", "langflow:extra_volumes[0].secret.secretName",
                    "langflow:extra_volumes[1].name", "langflow:extra_volumes[1].configMap.name"], found


def test_valid_pass_through_objects_are_kept_as_written():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge"]}]}]}},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": {
            "topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "langflow"}}}}]}}
    volumes = [
        {"name": "certs", "secret": {"secretName": "ca", "items": [{"key": "ca.crt", "path": "ca.crt"}], "defaultMode": 0o440}},
        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "bundle", "projected": {"sources": [{"configMap": {"name": "x"}}, {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
    ]
    config = parse_config({
        "affinity": affinity, "extra_volumes": volumes,
        "extra_volume_mounts": [{"name": "certs", "mountPath": "/etc/ssl/custom", "readOnly": True, "subPath": "ca.crt"}],
        "tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30},
                        {"operator": "Exists"}],
        "extra_env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                      {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}],
    })
    pod = spec.deployment_manifest(config, credentials_secret="c")["spec"]["template"]["spec"]
    assert pod["affinity"] == affinity and pod["volumes"][-4:] == volumes
