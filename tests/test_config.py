"""Every validation rule: the bad input goes in, the message names the key and the fix."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from settings import ConfigError, load_settings
from settings.loader import decode_value, parse_config, project_values

GOOD_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
URL_DB = {"database": {"type": "url", "url_secret": {"name": "langflow-db"}}}


def problems(values: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(values)
    return caught.value.problems


def only_problem(values: dict) -> str:
    found = problems(values)
    assert len(found) == 1, found
    return found[0]


def assert_refused(values: dict, key: str, *fragments: str) -> str:
    """Exactly one problem, about `key`, saying each fragment."""
    message = only_problem(values)
    assert message.startswith(f"langflow:{key}: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_defaults_are_valid_and_safe():
    config = parse_config({})
    assert config.image.tag == "1.6.4"
    assert config.service.type == "ClusterIP" and config.service.port == 7860
    assert config.database.type == "sqlite" and config.storage.enabled and config.storage.protect
    assert config.auth.enabled is False and config.auth.superuser == "langflow"
    assert (config.auth.access_token_expire_seconds, config.auth.refresh_token_expire_seconds) == (3600, 604800)
    assert config.auth.new_user_is_active is False and config.auth.enable_superuser_cli is False


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"image": {"tag": "1.6 4"}}, "image.tag", "not a valid image tag"),
        ({"image": {"tag": 1.6}}, "image.tag", "quote it"),
        ({"image": {"digest": "sha256:abc"}}, "image.digest", "64 lowercase hex"),
        ({"image": {"registry": "https://registry.example.com"}}, "image.registry", "no scheme"),
        ({"image": {"repository": "Langflow/Langflow:1.6"}}, "image.repository", "without tag"),
        ({"image": {"pull_policy": "Sometimes"}}, "image.pull_policy", "'IfNotPresent', 'Always' or 'Never'"),
        ({"image": {"pull_secrets": ["Bad_Name"]}}, "image.pull_secrets[0]", "not a valid Secret name"),
        ({"image": {"pull_secrets": ["a", "a"]}}, "image.pull_secrets[1]", "listed twice"),
        ({"image": {"tga": "1.6.4"}}, "image.tga", "unknown key"),
        ({"imagee": {}}, "imagee", "unknown key"),
        ({"replicas": 0}, "replicas", "must be at least 1"),
        ({"replicas": 21}, "replicas", "must be at most 20"),
        ({"replicas": "two"}, "replicas", "whole number"),
        ({"resources": {"requests": {"cpu": "lots"}}}, "resources.requests.cpu", "not a Kubernetes quantity"),
        ({"resources": {"limits": {"gpu": "1"}}}, "resources.limits.gpu", "unknown resource"),
        ({"service": {"type": "Ingress"}}, "service.type", "'ClusterIP', 'NodePort' or 'LoadBalancer'"),
        ({"service": {"port": 70000}}, "service.port", "at most 65535"),
        ({"storage": {"size": "1Gb"}}, "storage.size", "not a Kubernetes quantity"),
        ({"storage": {"storage_class": "Fast SSD"}}, "storage.storage_class", "not a valid StorageClass name"),
        ({"storage": {"access_mode": "ReadOnlyMany"}}, "storage.access_mode", "ReadWriteOnce"),
        ({"database": {"type": "url"}}, "database.url_secret", "required when database.type is 'url'"),
        ({"database": {"url_secret": {"name": "db"}}}, "database.url_secret", "only used when database.type is 'url'"),
        ({"database": {"type": "url", "url_secret": {"name": "DB"}}}, "database.url_secret.name", "not a valid Secret name"),
        ({"database": {"type": "url", "url_secret": {"name": "db", "key": "a b"}}}, "database.url_secret.key", "not a Secret key"),
        ({"database": {"type": "url", "url_secret": {}}}, "database.url_secret.name", "required"),
        ({"database": {"type": "mysql"}}, "database.type", "'sqlite', 'postgresql' or 'url'"),
        ({"auth": {"enabled": "maybe"}}, "auth.enabled", "true or false"),
        ({"auth": {"enabled": True, "superuser_password": "short"}}, "auth.superuser_password", "at least 12 characters"),
        ({"auth": {"secret_key": "a" * 32}}, "auth.secret_key", "URL-safe base64 of exactly 32 bytes"),
        ({"auth": {"secret_key": base64.urlsafe_b64encode(b"x" * 16).decode()}}, "auth.secret_key", "exactly 32 bytes"),
        ({"auth": {"access_token_expire_seconds": 0}}, "auth.access_token_expire_seconds", "must be more than 0"),
        ({"auth": {"refresh_token_expire_seconds": 60}}, "auth.refresh_token_expire_seconds", "longer than access_token_expire_seconds"),
        ({"flows": {"source": "git"}}, "flows.source", "'none', 'folder' or 'claim'"),
        ({"flows": {"source": "claim"}}, "flows.claim_name", "required when flows.source is 'claim'"),
        ({"flows": {"claim_name": "flows"}}, "flows.claim_name", "only used when flows.source is 'claim'"),
        ({"flows": {"source": "claim", "claim_name": "Flows!"}}, "flows.claim_name", "not a valid PersistentVolumeClaim name"),
        ({"flows": {"mount_path": "flows"}}, "flows.mount_path", "absolute folder"),
        ({"flows": {"mount_path": "/app/data"}}, "flows.mount_path", "overlaps /app/data"),
        ({"flows": {"mount_path": "/app/./data/flows"}}, "flows.mount_path", "overlaps /app/data"),
        ({"flows": {"mount_path": "/"}}, "flows.mount_path", "of its own"),
        ({"flows": {"source": "none", "folder": "flows"}}, "flows.folder", "only used when flows.source is 'folder'"),
        ({"runtime": {"workers": 0}}, "runtime.workers", "at least 1"),
        ({"runtime": {"log_level": "verbose"}}, "runtime.log_level", "'debug'"),
        ({"runtime": {"max_file_size_upload_mb": 0}}, "runtime.max_file_size_upload_mb", "at least 1"),
        ({"namespace": "Langflow_Prod"}, "namespace", "lowercase letters"),
        ({"name": "x" * 36}, "name", "at most 35"),
        ({"name": "1langflow"}, "name", "starting with a letter"),
        ({"extra_env": [{"name": "1BAD", "value": "x"}]}, "extra_env[0].name", "not an environment variable name"),
        ({"extra_env": [{"name": "A"}]}, "extra_env[0]", "exactly one of value or valueFrom"),
        ({"extra_env": [{"name": "A", "value": "1", "valueFrom": {}}]}, "extra_env[0]", "exactly one of value or valueFrom"),
        ({"extra_env": [{"name": "A", "value": 1}]}, "extra_env[0].value", "quote it"),
        ({"labels": ["a"]}, "labels", "mapping"),
    ],
)
def test_single_key_rules_name_the_key(values, key, fragment):
    assert_refused(values, key, fragment)


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        # Empty strings get the key and a fix, never a bare type error.
        ({"namespace": ""}, "namespace", "required"),
        ({"name": ""}, "name", "e.g. langflow"),
        ({"image": {"repository": ""}}, "image.repository", "e.g. langflowai/langflow"),
        ({"image": {"tag": ""}}, "image.tag", "pin a version such as 1.6.4"),
        ({"image": {"registry": ""}}, "image.registry", "registry.internal:5000"),
        ({"image": {"digest": ""}}, "image.digest", "remove the key"),
        ({"image": {"pull_secrets": [""]}}, "image.pull_secrets[0]", "required"),
        ({"auth": {"superuser": "  ", "enabled": True}}, "auth.superuser", "must not be empty"),
        ({"storage": {"storage_class": ""}}, "storage.storage_class", "remove the key"),
        ({"storage": {"size": ""}}, "storage.size", "write e.g."),
        ({"flows": {"folder": ""}}, "flows.folder", "must not be empty"),
        ({"flows": {"mount_path": ""}}, "flows.mount_path", "must not be empty"),
        ({"flows": {"default_flow": ""}}, "flows.default_flow", "must not be empty"),
        ({"database": {"type": "url", "url_secret": {"name": ""}}}, "database.url_secret.name", "required"),
        ({"database": {"type": "url", "url_secret": {"name": "db", "key": ""}}}, "database.url_secret.key", "e.g. url"),
        ({"extra_env": [{"name": "", "value": "x"}]}, "extra_env[0].name", "e.g. OPENAI_API_KEY"),
        ({"resources": {"limits": {"memory": ""}}}, "resources.limits.memory", "write e.g."),
    ],
)
def test_empty_strings_name_the_key_and_the_fix(values, key, fragment):
    assert_refused(values, key, fragment)


@pytest.mark.parametrize(
    "tag", ["latest", "LATEST", "main", "master", "dev", "develop", "edge", "nightly", "stable", "nightly-2025-01-01",
            "1.6", "1", "v1.6", "1.6.4-latest", "1.6.x", "canary", "head"])
def test_moving_tags_are_rejected_with_the_reason(tag):
    message = assert_refused({"image": {"tag": tag}}, "image.tag", "moving tag", "pin a version")
    assert repr(tag) in message


@pytest.mark.parametrize("tag", ["1.6.4", "v1.6.4", "1.13.0", "1.6.4-custom.2", "1.7.0.dev26", "1.6.4_offline"])
def test_version_tags_are_accepted(tag):
    assert parse_config({"image": {"tag": tag}}).image.tag == tag


@pytest.mark.parametrize("tag", ["1.5.0", "1.14.0", "2.0.0", "0.6.4"])
def test_tags_outside_the_supported_range_are_refused_naming_the_range(tag):
    assert_refused({"image": {"tag": tag}}, "image.tag", "outside the supported Langflow range 1.6.0 to 1.13.x",
                   "allow_unverified_version")


def test_an_explicit_override_accepts_an_unverified_version():
    assert parse_config({"image": {"tag": "1.14.2", "allow_unverified_version": True}}).image.tag == "1.14.2"
    # Before 1.6, flows are skipped with login on: still refused, override or not.
    assert_refused({"image": {"tag": "1.5.0", "allow_unverified_version": True}, "auth": {"enabled": True}},
                   "image.tag", "skips loading flows when auth is on")


@pytest.mark.parametrize("registry", ["registry", "myregistry", "harbor"])
def test_a_registry_that_runtimes_read_as_a_docker_hub_path_is_refused(registry):
    assert_refused({"image": {"registry": registry}}, "image.registry", "Docker Hub", "full host name")


@pytest.mark.parametrize("registry", ["registry.internal", "registry:5000", "localhost", "10.0.0.5:5000"])
def test_registry_hosts_are_accepted(registry):
    assert parse_config({"image": {"registry": registry}}).image.registry == registry


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"access_token_expire_seconds": 10**12, "refresh_token_expire_seconds": 10**13}, "auth.access_token_expire_seconds"),
        ({"refresh_token_expire_seconds": 10**11}, "auth.refresh_token_expire_seconds"),
        ({"access_token_expire_seconds": 2**63}, "auth.access_token_expire_seconds"),
    ],
)
def test_token_lifetimes_have_a_sane_upper_bound(values, key):
    found = problems({"auth": values})
    assert any(p.startswith(f"langflow:{key}: must be at most") for p in found), found


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"replicas": 2}, "replicas", "SQLite allows exactly one replica"),
        ({"runtime": {"workers": 2}}, "runtime.workers", "SQLite allows one worker"),
        ({"storage": {"enabled": False}}, "storage.enabled", "SQLite keeps its database on the data volume"),
        ({"replicas": 2, **URL_DB}, "storage.access_mode", "use ReadWriteMany"),
        ({"service": {"type": "LoadBalancer"}}, "service.type", "set auth.enabled: true"),
        ({"service": {"type": "NodePort"}}, "service.type", "set auth.enabled: true"),
        ({"auth": {"superuser_password": "a-long-password"}}, "auth.superuser_password", "only used when auth.enabled is true"),
        ({"auth": {"superuser": "admin"}}, "auth.superuser", "only used when auth.enabled is true"),
        ({"extra_volumes": [{"name": "a", "emptyDir": {}}], "extra_volume_mounts": [{"name": "a", "mountPath": "/app/flows/x"}]},
         "extra_volume_mounts[0].mountPath", "overlaps /app/flows"),
    ],
)
def test_cross_key_rules_name_the_key_to_change(values, key, fragment):
    assert_refused(values, key, fragment)


def test_every_problem_is_reported_at_once():
    found = problems({"image": {"tag": "latest"}, "replicas": 0, "storage": {"size": "big"}, "bogus": 1})
    assert [p.split(":")[1] for p in found] == ["image.tag", "replicas", "storage.size", "bogus"]
    assert "4 problems" in str(ConfigError(found))


def test_field_errors_do_not_hide_rule_errors():
    # A bad tag (field), a label (several in one key) and SQLite with two workers (across keys), together.
    found = problems({
        "image": {"tag": "latest"},
        "labels": {"ok": "x" * 64, "bad key!": "v"},
        "runtime": {"workers": 2},
        "extra_env": [{"name": "langflow_secret_key", "value": "plain"}],
    })
    keys = [p.split(": ")[0] for p in found]
    assert keys == [
        "langflow:image.tag", "langflow:extra_env[0].name", "langflow:labels.ok", 'langflow:labels["bad key!"]',
        "langflow:runtime.workers",
    ], found


def test_a_rule_about_a_broken_key_stays_silent():
    # database is invalid: the replica rule, which depends on it, must not guess.
    found = problems({"replicas": 2, "database": {"type": "url"}})
    assert [p.split(": ")[0] for p in found] == ["langflow:database.url_secret"], found


def test_valid_combinations_pass():
    config = parse_config({
        "replicas": 3,
        **URL_DB,
        "storage": {"access_mode": "ReadWriteMany"},
        "runtime": {"workers": 2},
        "service": {"type": "LoadBalancer", "annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}},
        "auth": {"enabled": True, "secret_key": GOOD_KEY, "superuser_password": "a-long-password"},
        "extra_volumes": [{"name": "certs", "secret": {"secretName": "ca"}}],
        "extra_volume_mounts": [{"name": "certs", "mountPath": "/etc/certs", "readOnly": True}],
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "labels": {"example.com/team": "ml", "cost-center": ""},
        "resources": {"requests": {"cpu": 1, "memory": "1.5Gi"}, "limits": {"cpu": 2.5, "memory": "3Gi"}},
    })
    assert config.auth.secret_key.get_secret_value() == GOOD_KEY
    assert config.resources.requests["cpu"] == "1" and config.resources.limits["cpu"] == "2.5"
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


def test_config_and_flow_problems_come_together(tmp_path: Path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "broken.json").write_text("{")
    with pytest.raises(ConfigError) as caught:
        load_settings({"image": {"tag": "latest"}, "replicas": 2}, tmp_path)
    keys = [p.split(": ")[0] for p in caught.value.problems]
    assert keys == ["langflow:image.tag", "langflow:replicas", "flows/broken.json"], caught.value.problems


def test_new_users_active_with_login_on_is_a_warning(tmp_path: Path):
    settings = load_settings({"auth": {"enabled": True, "new_user_is_active": True}, "flows": {"source": "none"}}, tmp_path)
    assert any("anyone who reaches Langflow can register" in w for w in settings.warnings)
