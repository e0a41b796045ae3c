"""Every validation rule: the bad input goes in, the message names the key and the fix."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from settings import ConfigError, load_settings
from settings.loader import decode_value, parse_config, project_values

GOOD_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


def problems(values: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    return caught.value.problems


def only_problem(values: dict) -> str:
    found = problems(values)
    assert len(found) == 1, found
    return found[0]


def test_defaults_are_valid_and_safe():
    config = parse_config({})
    assert config.image.tag == "1.6.4"
    assert config.service.type == "ClusterIP" and config.service.port == 7860
    assert config.database.type == "sqlite" and config.storage.enabled and config.storage.protect
    assert config.auth.enabled is False and config.auth.superuser == "langflow"
    assert (config.auth.access_token_expire_seconds, config.auth.refresh_token_expire_seconds) == (3600, 604800)
    assert config.auth.new_user_is_active is False and config.auth.enable_superuser_cli is False


@pytest.mark.parametrize("tag", ["latest", "LATEST", "main", "nightly", "stable"])
def test_moving_tags_are_rejected_with_the_reason(tag):
    message = only_problem({"image": {"tag": tag}})
    assert message.startswith("langflow:image.tag:")
    assert "moving tag" in message and "pin a version" in message


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"image": {"tag": "1.6 4"}}, "image.tag", "not a valid image tag"),
        ({"image": {"tag": 1.6}}, "image.tag", "quote it"),
        ({"image": {"digest": "sha256:abc"}}, "image.digest", "64 lowercase hex"),
        ({"image": {"registry": "https://registry.example.com"}}, "image.registry", "no scheme"),
        ({"image": {"repository": "Langflow/Langflow:1.6"}}, "image.repository", "without tag"),
        ({"image": {"pull_policy": "Sometimes"}}, "image.pull_policy", "'IfNotPresent', 'Always' or 'Never'"),
        ({"image": {"pull_secrets": ["Bad_Name"]}}, "image.pull_secrets", "not a Secret name"),
        ({"image": {"tga": "1.6.4"}}, "image.tga", "unknown key"),
        ({"imagee": {}}, "imagee", "unknown key"),
        ({"replicas": 0}, "replicas", "greater than or equal to 1"),
        ({"replicas": "two"}, "replicas", "whole number"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "resources.requests.cpu", "not a quantity"),
        ({"resources": {"limits": {"gpu": "1"}}}, "resources.limits.gpu", "unknown resource"),
        ({"service": {"type": "Ingress"}}, "service.type", "'ClusterIP', 'NodePort' or 'LoadBalancer'"),
        ({"service": {"port": 70000}}, "service.port", "less than or equal to 65535"),
        ({"storage": {"size": "1Gb"}}, "storage.size", "not a storage size"),
        ({"storage": {"size": "500m"}}, "storage.size", "not a storage size"),
        ({"storage": {"storage_class": "Fast SSD"}}, "storage.storage_class", "not a StorageClass name"),
        ({"storage": {"access_mode": "ReadOnlyMany"}}, "storage.access_mode", "ReadWriteOnce"),
        ({"database": {"type": "url"}}, "database.url_secret", "required when database.type is 'url'"),
        ({"database": {"url_secret": {"name": "db"}}}, "database.url_secret", "only used when database.type is 'url'"),
        ({"database": {"type": "url", "url_secret": {"name": "DB"}}}, "database.url_secret.name", "not a Secret name"),
        ({"database": {"type": "url", "url_secret": {"name": "db", "key": "a b"}}}, "database.url_secret.key", "not a Secret key"),
        ({"database": {"type": "url", "url_secret": {}}}, "database.url_secret.name", "required"),
        ({"database": {"type": "mysql"}}, "database.type", "'sqlite' or 'url'"),
        ({"auth": {"enabled": "maybe"}}, "auth.enabled", "true or false"),
        ({"auth": {"superuser": "  "}}, "auth.superuser", "must not be empty"),
        ({"auth": {"superuser_password": "short"}}, "auth.superuser_password", "at least 12 characters"),
        ({"auth": {"secret_key": "a" * 32}}, "auth.secret_key", "URL-safe base64 of exactly 32 bytes"),
        ({"auth": {"secret_key": base64.urlsafe_b64encode(b"x" * 16).decode()}}, "auth.secret_key", "exactly 32 bytes"),
        ({"auth": {"access_token_expire_seconds": 0}}, "auth.access_token_expire_seconds", "greater than 0"),
        ({"auth": {"refresh_token_expire_seconds": 60}}, "auth.refresh_token_expire_seconds", "longer than access_token_expire_seconds"),
        ({"flows": {"source": "git"}}, "flows.source", "'none', 'folder' or 'claim'"),
        ({"flows": {"source": "claim"}}, "flows.claim_name", "required when flows.source is 'claim'"),
        ({"flows": {"claim_name": "flows"}}, "flows.claim_name", "only used when flows.source is 'claim'"),
        ({"flows": {"source": "claim", "claim_name": "Flows!"}}, "flows.claim_name", "not a PersistentVolumeClaim name"),
        ({"flows": {"mount_path": "flows"}}, "flows.mount_path", "absolute folder"),
        ({"flows": {"mount_path": "/app/data"}}, "flows.mount_path", "of its own"),
        ({"runtime": {"workers": 0}}, "runtime.workers", "greater than or equal to 1"),
        ({"runtime": {"log_level": "verbose"}}, "runtime.log_level", "'debug'"),
        ({"runtime": {"max_file_size_upload_mb": 0}}, "runtime.max_file_size_upload_mb", "greater than or equal to 1"),
        ({"namespace": "Langflow_Prod"}, "namespace", "lowercase letters"),
        ({"name": "x" * 41}, "name", "at most 40"),
        ({"tolerations": [{"key": "gpu", "operator": "Maybe"}]}, "tolerations[0].operator", "'Exists' or 'Equal'"),
        ({"tolerations": [{"key": "gpu", "effect": "NoRun"}]}, "tolerations[0].effect", "NoSchedule"),
        ({"extra_env": [{"name": "1BAD", "value": "x"}]}, "extra_env[0].name", "not an environment variable name"),
        ({"extra_env": [{"name": "A"}]}, "extra_env[0]", "exactly one of value or valueFrom"),
        ({"extra_env": [{"name": "A", "value": "1", "valueFrom": {}}]}, "extra_env[0]", "exactly one of value or valueFrom"),
        ({"extra_volumes": [{"secret": {"secretName": "x"}}]}, "extra_volumes[0].name", "needs a name"),
        ({"extra_volumes": [{"name": "x"}]}, "extra_volumes[0]", "exactly one source"),
        ({"extra_volumes": [{"name": "host", "hostPath": {"path": "/"}}]}, "extra_volumes[0]", "not allowed under Pod Security"),
        ({"extra_volume_mounts": [{"name": "x", "mountPath": "rel"}]}, "extra_volume_mounts[0].mountPath", "absolute path"),
        ({"labels": ["a"]}, "labels", "mapping"),
    ],
)
def test_single_key_rules_name_the_key(values, key, fragment):
    message = only_problem(values)
    assert message.startswith(f"langflow:{key}:"), message
    assert fragment in message, message


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"replicas": 2}, "replicas", "SQLite allows exactly one replica"),
        ({"runtime": {"workers": 2}}, "runtime.workers", "SQLite allows one worker"),
        ({"storage": {"enabled": False}}, "storage.enabled", "SQLite keeps its database on the data volume"),
        (
            {"replicas": 2, "database": {"type": "url", "url_secret": {"name": "db"}}},
            "storage.access_mode", "use ReadWriteMany",
        ),
        ({"service": {"type": "LoadBalancer"}}, "service.type", "set auth.enabled: true"),
        ({"service": {"type": "NodePort"}}, "service.type", "set auth.enabled: true"),
        ({"auth": {"enabled": True}, "image": {"tag": "1.5.0"}}, "image.tag", "use 1.6.0 or later"),
        ({"extra_env": [{"name": "LANGFLOW_DATABASE_URL", "value": "x"}]}, "extra_env[0].name", "from database"),
        ({"extra_env": [{"name": "LANGFLOW_SECRET_KEY", "value": "x"}]}, "extra_env[0].name", "auth.secret_key"),
        ({"extra_env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "extra_env[1].name", "already set by extra_env[0]"),
        (
            {"extra_volumes": [{"name": "data", "emptyDir": {}}]},
            "extra_volumes", "used twice or by the program",
        ),
        (
            {"extra_volumes": [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]},
            "extra_volumes", "used twice",
        ),
        ({"extra_volume_mounts": [{"name": "nope", "mountPath": "/x"}]}, "extra_volume_mounts[0].name", "no extra volume named 'nope'"),
        (
            {"extra_volumes": [{"name": "a", "emptyDir": {}}], "extra_volume_mounts": [{"name": "a", "mountPath": "/app/flows/x"}]},
            "extra_volume_mounts[0].mountPath", "overlaps /app/flows",
        ),
    ],
)
def test_cross_key_rules_name_the_key_to_change(values, key, fragment):
    message = only_problem(values)
    assert message.startswith(f"langflow:{key}:"), message
    assert fragment in message, message


def test_every_problem_is_reported_at_once():
    found = problems({"image": {"tag": "latest"}, "replicas": 0, "storage": {"size": "big"}, "bogus": 1})
    assert [p.split(":")[1] for p in found] == ["image.tag", "replicas", "storage.size", "bogus"]
    assert "4 problems" in str(ConfigError(found))


def test_valid_combinations_pass():
    config = parse_config({
        "replicas": 3,
        "database": {"type": "url", "url_secret": {"name": "langflow-db"}},
        "storage": {"access_mode": "ReadWriteMany"},
        "runtime": {"workers": 2},
        "service": {"type": "LoadBalancer"},
        "auth": {"enabled": True, "secret_key": GOOD_KEY, "superuser_password": "a-long-password"},
        "extra_volumes": [{"name": "certs", "secret": {"secretName": "ca"}}],
        "extra_volume_mounts": [{"name": "certs", "mountPath": "/etc/certs", "readOnly": True}],
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    })
    assert config.auth.secret_key.get_secret_value() == GOOD_KEY
    assert "a-long-password" not in repr(config)  # secrets never show in logs or errors


def test_values_arrive_from_pulumi_as_text():
    values = project_values({
        "langflow:image": '{"tag": "1.6.4"}',
        "langflow:replicas": "1",
        "langflow:extra_env": '[{"name": "A", "value": "1"}]',
        "kubernetes:context": "elsewhere",
    })
    assert values == {"image": {"tag": "1.6.4"}, "replicas": "1", "extra_env": [{"name": "A", "value": "1"}]}
    assert decode_value("1.6") == "1.6"  # a tag stays text
    assert parse_config(values).replicas == 1


def test_load_settings_combines_config_and_flows(tmp_path: Path):
    (tmp_path / "flows").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_settings({"flows": {"folder": "flows"}}, tmp_path)
    assert caught.value.problems == [
        "langflow:flows.folder: no *.json flow files in 'flows'; add one or set flows.source: none"
    ]
    settings = load_settings({"flows": {"source": "none"}}, tmp_path)
    assert settings.flows == [] and settings.default_flow is None
    settings = load_settings({"flows": {"source": "claim", "claim_name": "f", "default_flow": "x"}}, tmp_path)
    assert settings.default_flow == "x"
