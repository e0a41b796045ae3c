"""Who Langflow sees behind the sign-in (sso.identity): the mode, its rules, and what each piece is given."""

from __future__ import annotations

import json

import pytest

from components import langflow_spec
from components.edge import spec
from components.network_policies.spec import network_policy_manifests, stack_pods
from settings.edge import identity_mode
from settings.loader import parse_config
from settings.validation import warnings
from tests.program import run_program, stack_values
from tests.test_config import assert_refused
from tests.test_edge import DEPLOYMENT, INGRESS, SSO

# A stack that can be per-user: Langflow 1.13.0 with its login on, behind SSO.
PER_USER = {"image": {"tag": "1.13.0"}, "auth": {"enabled": True}, "ingress": INGRESS, "sso": SSO}


def with_identity(identity: dict, **more) -> dict:
    return {**PER_USER, "sso": {**SSO, "identity": identity}, **more}


def external_env(config) -> dict[str, str]:
    return {e["name"].removeprefix("LANGFLOW_EXTERNAL_AUTH_"): e["value"]
            for e in langflow_spec.managed_env(config, "credentials", langflow_spec.DatabaseLink({"name": "db", "key": "url"}))
            if e["name"].startswith("LANGFLOW_EXTERNAL_AUTH_")}


# --- the mode ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "mode"), [
    ({}, None),  # no SSO
    (PER_USER, "per-user"),  # unset: per-user where it works
    ({**PER_USER, "image": {"tag": "1.11.0"}}, "per-user"),
    ({**PER_USER, "image": {"tag": "1.10.3"}}, "shared"),  # no external authentication before 1.11
    ({**PER_USER, "image": {"tag": "1.6.4"}}, "shared"),  # the chart's release
    ({**PER_USER, "auth": {"enabled": False}}, "shared"),  # login off: Langflow checks no token
    (with_identity({"mode": "shared"}), "shared"),
])
def test_unset_the_mode_is_per_user_where_langflow_can_do_it(values, mode):
    config = parse_config(values)
    assert identity_mode(config.sso, config.image.tag, config.auth.enabled) == mode


def test_prod_runs_1_6_4_so_it_is_shared_and_every_preview_says_so():
    config = parse_config(stack_values("prod"))
    assert identity_mode(config.sso, config.image.tag, config.auth.enabled) == "shared"
    (said,) = [w for w in warnings(config) if "sso.identity.mode is shared" in w]
    assert "people sign in twice" in said and "1.11" in said
    assert not any("sso.identity" in w for w in warnings(parse_config(PER_USER)))
    login_off = parse_config({**PER_USER, "auth": {"enabled": False}})
    assert any("everyone who signs in is Langflow's superuser" in w for w in warnings(login_off))


@pytest.mark.parametrize(("values", "key", "fragments"), [
    (with_identity({"mode": "per-user"}, image={"tag": "1.10.3"}), "sso.identity.mode",
     ("needs Langflow 1.11 or later", "1.11.0", "mode: shared")),
    (with_identity({"mode": "per-user"}, auth={"enabled": False}), "sso.identity.mode",
     ("needs Langflow's login on", "auth.enabled: true")),
    (with_identity({"mode": "shared", "username_claim": "email"}), "sso.identity.username_claim",
     ("only used with sso.identity.mode: per-user",)),
    (with_identity({"api_keys": True}, image={"tag": "1.6.4"}), "sso.identity.api_keys", ("mode is shared",)),
    (with_identity({"username_claim": ""}), "sso.identity.username_claim", ("not a claim name",)),
    (with_identity({"username_claim": " email"}), "sso.identity.username_claim", ("not a claim name",)),
    (with_identity({"mode": "per_user"}), "sso.identity.mode", ("'shared' or 'per-user'",)),
    (with_identity({"access": {"claim": "groups", "levels": {"admins": "admin"}}}), "sso.identity.access.claim",
     ("is a list", "use a string claim")),
    (with_identity({"access": {"claim": ""}}), "sso.identity.access.claim", ("not a claim name",)),
    (with_identity({"access": {"claim": "email"}}), "sso.identity.access.levels", ("required with `claim`",)),
    (with_identity({"access": {"claim": "email", "levels": {"a@example.com": "owner"}}}),
     "sso.identity.access.levels.a@example.com", ("'viewer', 'editor' or 'admin'",)),
    (with_identity({"access": {"claim": "email", "levels": {" ": "admin"}}}), 'sso.identity.access.levels[" "]',
     ("empty claim value",)),
    (with_identity({"access": {"claim": "email", "levels": {"A@x.com": "admin", "a@x.com": "viewer"}}}),
     'sso.identity.access.levels["a@x.com"]', ("listed twice",)),
    (with_identity({"access": {"levels": {"a@example.com": "admin"}}}), "sso.identity.access.levels",
     ("only used with `claim`",)),
    (with_identity({"access": {"default_level": "editor"}}), "sso.identity.access.default_level",
     ("only used with `claim`",)),
    (with_identity({"access": {"claim": "email", "levels": {"a@example.com": "admin"}, "default_level": "root"}}),
     "sso.identity.access.default_level", ("'viewer', 'editor' or 'admin'",)),
    ({**PER_USER, "trusted_ca": {"config_map": "ca", "secret": "ca"}}, "trusted_ca.secret", ("not both",)),
    ({**PER_USER, "trusted_ca": {"key": "ca.crt"}}, "trusted_ca.key", ("only used with config_map or secret",)),
    ({**PER_USER, "trusted_ca": {"config_map": "Platform CA"}}, "trusted_ca.config_map", ("name",)),
    ({**PER_USER, "trusted_ca": {"secret": "ca", "key": "../ca.crt"}}, "trusted_ca.key", ("not a ConfigMap or Secret key",)),
    ({**PER_USER, "extra_env": [{"name": "SSL_CERT_FILE", "value": "/x"}]}, "extra_env[0].name", ("trusted_ca",)),
    ({**PER_USER, "extra_env": [{"name": "LANGFLOW_EXTERNAL_AUTH_TRUSTED_JWT_DECODE", "value": "true"}]},
     "extra_env[0].name", ("sso.identity",)),
])
def test_identity_rules_name_the_key_and_the_fix(values, key, fragments):
    assert_refused(values, key, *fragments)


# --- what Langflow is given --------------------------------------------------------------------------

def test_per_user_langflow_verifies_the_dex_token_and_never_trusts_it_unchecked():
    env = external_env(parse_config(PER_USER))
    assert env == {
        "ENABLED": "true", "PROVIDER": "dex", "TOKEN_HEADER": "Authorization", "TRUSTED_JWT_DECODE": "false",
        "JWKS_URL": "https://platform.example.com/dex/keys", "ISSUER": "https://platform.example.com/dex",
        "AUDIENCE": "langflow", "ALGORITHMS": "RS256", "USERNAME_CLAIM": "email",
        # API keys off by default: Langflow gates them behind its access ceiling, which then caps nothing.
        "ACCESS_CEILING_ENABLED": "true", "DISABLE_API_KEYS_FOR_EXTERNAL_USERS": "true", "DEFAULT_ACCESS_LEVEL": "admin",
    }


def test_shared_mode_and_stacks_without_sso_give_langflow_no_external_authentication():
    for values in ({}, stack_values("prod"), with_identity({"mode": "shared"})):
        assert external_env(parse_config(values)) == {}


def test_access_levels_come_from_a_string_claim_with_a_default():
    env = external_env(parse_config(with_identity({
        "username_claim": "preferred_username", "api_keys": True,
        "access": {"claim": "email", "levels": {"ops@example.com": "admin", "dev@example.com": "editor"}}})))
    assert env["USERNAME_CLAIM"] == "preferred_username"
    assert env["ACCESS_CEILING_ENABLED"] == "true" and env["ACCESS_CLAIM"] == "email"
    assert json.loads(env["ACCESS_CLAIM_MAPPING"]) == {"ops@example.com": "admin", "dev@example.com": "editor"}
    assert env["DEFAULT_ACCESS_LEVEL"] == "viewer" and env["DISABLE_API_KEYS_FOR_EXTERNAL_USERS"] == "false"


def test_with_api_keys_allowed_and_no_claim_there_is_no_ceiling():
    env = external_env(parse_config(with_identity({"api_keys": True})))
    assert env["ACCESS_CEILING_ENABLED"] == "false" and "DEFAULT_ACCESS_LEVEL" not in env


def test_the_trusted_ca_is_mounted_and_replaces_the_public_bundle_for_langflow():
    config = parse_config({**PER_USER, "trusted_ca": {"secret": "platform-ca", "key": "bundle.pem"}})
    env = {e["name"]: e.get("value") for e in langflow_spec.managed_env(config, "credentials")}
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == "/etc/langflow/trusted-ca/bundle.pem"
    assert {"name": "trusted-ca", "secret": {"secretName": "platform-ca", "items": [
        {"key": "bundle.pem", "path": "bundle.pem"}]}} in langflow_spec.volumes(config, "flows")
    assert {"name": "trusted-ca", "mountPath": "/etc/langflow/trusted-ca", "readOnly": True} \
        in langflow_spec.volume_mounts(config)
    untouched = {e["name"] for e in langflow_spec.managed_env(parse_config(PER_USER), "credentials")}
    assert not {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"} & untouched


# --- what oauth2-proxy is given ----------------------------------------------------------------------

def test_per_user_oauth2_proxy_passes_the_id_token_and_ends_the_session_before_it():
    config = parse_config(with_identity({}, sso={**SSO, "dex": {"id_token_expiry_minutes": 60}}))
    args = spec.oauth2_proxy_args(config.sso, config.ingress, "http://langflow:7860/", per_user=True,
                                  redis_url="redis://r:6379")
    assert "--pass-authorization-header=true" in args and "--cookie-expire=55m" in args
    shared = spec.oauth2_proxy_args(config.sso, config.ingress, "http://langflow:7860/", redis_url="redis://r:6379")
    assert not any(a.startswith(("--pass-authorization-header", "--cookie-expire")) for a in shared)


def test_oauth2_proxy_trusts_the_platform_ca_for_the_issuer():
    config = parse_config({**PER_USER, "trusted_ca": {"config_map": "platform-ca"}})
    manifest = spec.oauth2_proxy_deployment_manifest("langflow", "ns", config.sso, config.ingress, "http://x/", None, {}, {},
                                                     per_user=True, trusted_ca=config.trusted_ca)
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--provider-ca-file=/etc/oauth2-proxy/trusted-ca/ca.crt" in container["args"]
    assert "--use-system-trust-store=true" in container["args"]
    assert pod["volumes"] == [{"name": "trusted-ca", "configMap": {"name": "platform-ca", "items": [
        {"key": "ca.crt", "path": "ca.crt"}]}}]
    assert container["volumeMounts"] == [{"name": "trusted-ca", "mountPath": "/etc/oauth2-proxy/trusted-ca",
                                          "readOnly": True}]


def test_a_per_user_stack_wires_langflow_oauth2_proxy_and_the_network_together():
    values = {**stack_values("prod"), "image": {**stack_values("prod")["image"], "tag": "1.13.0"},
              "sso": {k: v for k, v in stack_values("prod")["sso"].items() if k != "identity"},
              "trusted_ca": {"config_map": "platform-ca"}}
    run = run_program(values, "prod")
    assert run.error is None, run.error
    (proxy,) = run.named(DEPLOYMENT, "langflow-oauth2-proxy").inputs["spec"]["template"]["spec"]["containers"]
    assert "--pass-authorization-header=true" in proxy["args"] and "--cookie-expire=1435m" in proxy["args"]
    assert any(a.startswith("--provider-ca-file=") for a in proxy["args"])
    (langflow,) = run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in langflow["env"]}
    assert env["LANGFLOW_EXTERNAL_AUTH_ENABLED"] == "true" and env["SSL_CERT_FILE"].startswith("/etc/langflow/trusted-ca/")
    # Langflow reaches the issuer for Dex's keys, where oauth2-proxy does.
    policy = run.named("kubernetes:networking.k8s.io/v1:NetworkPolicy", "langflow-langflow").inputs["spec"]
    assert {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"protocol": "TCP", "port": 443}]} in policy["egress"]


def test_langflow_reaches_the_issuer_only_when_it_checks_tokens():
    def egress(values: dict) -> list:
        config = parse_config(values)
        policies = network_policy_manifests(config.network_policies, stack_pods(config), app="langflow",
                                            namespace="langflow", labels={}, annotations={})
        return policies["langflow-langflow"]["spec"]["egress"]

    issuer = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}],
              "ports": [{"protocol": "TCP", "port": 443}]}
    assert issuer in egress(PER_USER)
    assert issuer not in egress(with_identity({"mode": "shared"}))
