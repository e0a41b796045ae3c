"""The edge: Ingress with TLS, oauth2-proxy, Dex's OAuth2Client: rules, names and what each registers."""

from __future__ import annotations

import base64

import pytest

from components.edge import spec
from policy.rules import selector_matches
from settings.loader import parse_config
from tests.program import run_program, stack_values
from tests.test_config import assert_refused

INGRESS = {"enabled": True, "hosts": [{"host": "langflow.example.com"}],
           "tls": {"mode": "secret", "secret_name": "langflow-tls"}}
SSO = {"enabled": True, "issuer_url": "https://platform.example.com/dex"}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
INGRESS_TYPE = "kubernetes:networking.k8s.io/v1:Ingress"
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def plain(wire):
    return wire["value"] if isinstance(wire, dict) and wire.get(SIG_KEY) == SECRET_SIG else wire


# Computed with Go's own hash/fnv and encoding/base32 (fnv.New64().Sum([]byte(id)), lowercase base32 alphabet,
# padding trimmed), independently of the implementation under test.
DEX_NAMES = {
    "langflow": "nrqw4z3gnrxxps7sttsiiirdeu",
    "langflow-prod": "nrqw4z3gnrxxollqojxwjs7sttsiiirdeu",
    "example-app": "mv4gc3lqnrss2ylqodf7fhheqqrcgji",
    "a": "mhf7fhheqqrcgji",
    "Langflow_Client.1": "jrqw4z3gnrxxox2dnruwk3tufyy4x4u44scceizf",
}


@pytest.mark.parametrize(("client_id", "name"), sorted(DEX_NAMES.items()))
def test_the_oauth2client_name_is_the_one_dex_derives(client_id, name):
    assert spec.dex_object_name(client_id) == name


# --- rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"ingress": {**INGRESS, "hosts": [{"host": "10.0.0.5"}]}}, "ingress.hosts[0].host", "is an IP address"),
        ({"ingress": {**INGRESS, "hosts": [{"host": "[fd00::1]"}]}}, "ingress.hosts[0].host", "is an IP address"),
        ({"ingress": {**INGRESS, "hosts": [{"host": "https://langflow.example.com"}]}}, "ingress.hosts[0].host",
         "not a valid DNS name"),
        ({"ingress": {**INGRESS, "hosts": [{"host": "*.example.com"}]}}, "ingress.hosts[0].host", "wildcard"),
        ({"ingress": {**INGRESS, "hosts": [{"host": "Langflow.Example.com"}]}}, "ingress.hosts[0].host", "DNS name"),
        ({"ingress": {**INGRESS, "hosts": [{"host": "a.example.com"}, {"host": "a.example.com"}]}},
         "ingress.hosts[1].host", "listed twice"),
        ({"ingress": {**INGRESS, "hosts": []}}, "ingress.hosts", "at least one host"),
        ({"ingress": {**INGRESS, "hosts": [{"host": "a.example.com", "paths": [{"path": "api"}]}]}},
         "ingress.hosts[0].paths[0].path", "not a URL path"),
        ({"ingress": {**INGRESS, "tls": {"mode": "secret"}}}, "ingress.tls.secret_name", "required with mode secret"),
        ({"ingress": {**INGRESS, "tls": {"mode": "cert-manager", "secret_name": "t"}}}, "ingress.tls.cluster_issuer",
         "exactly one of cluster_issuer or issuer"),
        ({"ingress": {**INGRESS, "tls": {"mode": "cert-manager", "secret_name": "t", "issuer": "a", "cluster_issuer": "b"}}},
         "ingress.tls.cluster_issuer", "exactly one"),
        ({"ingress": {**INGRESS, "tls": {"mode": "secret", "secret_name": "t", "issuer": "a"}}}, "ingress.tls.issuer",
         "only used with mode cert-manager"),
        ({"ingress": {**INGRESS, "class_name": "Nginx!"}}, "ingress.class_name", "IngressClass name"),
        ({"ingress": {**INGRESS, "timeout_seconds": 30}}, "ingress.timeout_seconds", "at least 60"),
        ({"sso": {"enabled": True}, "ingress": INGRESS}, "sso.issuer_url", "required with SSO on"),
        ({"sso": {**SSO, "issuer_url": "http://platform.example.com/dex"}, "ingress": INGRESS}, "sso.issuer_url",
         "must be an https URL"),
        ({"sso": {**SSO, "issuer_url": "https://platform.example.com/dex/"}, "ingress": INGRESS}, "sso.issuer_url",
         "not an issuer URL"),
        ({"sso": {**SSO, "client_id": " "}, "ingress": INGRESS}, "sso.client_id", "printable ASCII characters"),
        ({"sso": {**SSO, "api_paths": ["/admin/"]}, "ingress": INGRESS}, "sso.api_paths[0]", "only Langflow's API paths"),
        ({"sso": {**SSO, "oauth2_proxy": {"email_domains": ["not a domain"]}}, "ingress": INGRESS},
         "sso.oauth2_proxy.email_domains[0]", "not a valid e-mail domain"),
        ({"sso": {**SSO, "oauth2_proxy": {"upstream_timeout_seconds": 5}}, "ingress": INGRESS},
         "sso.oauth2_proxy.upstream_timeout_seconds", "at least 30"),
        ({"sso": {**SSO, "oauth2_proxy": {"image": {"tag": "latest"}}}, "ingress": INGRESS},
         "sso.oauth2_proxy.image.tag", "moving tag"),
        ({"sso": {**SSO, "dex": {"namespace": "Cpaas"}}, "ingress": INGRESS}, "sso.dex.namespace", "namespace name"),
        ({"sso": {**SSO, "oauth2_proxy": {"session_store": "memcached"}}, "ingress": INGRESS},
         "sso.oauth2_proxy.session_store", "'redis' or 'cookie'"),
        ({"sso": {**SSO, "oauth2_proxy": {"session_store": "cookie", "redis": {}}}, "ingress": INGRESS},
         "sso.oauth2_proxy.redis", "only used with session_store: redis"),
        ({"sso": {**SSO, "oauth2_proxy": {"redis": {"image": {"tag": "7"}}}}, "ingress": INGRESS},
         "sso.oauth2_proxy.redis.image.tag", "7.0.15"),
        ({"sso": {**SSO, "oauth2_proxy": {"redis": {"image": {"tag": "7.0-alpine"}}}}, "ingress": INGRESS},
         "sso.oauth2_proxy.redis.image.tag", "not a whole version"),
        ({"sso": {**SSO, "api_paths": [], "oauth2_proxy": {"trusted_proxy_cidrs": ["10.244.0.1/16"]}}, "ingress": INGRESS},
         "sso.oauth2_proxy.trusted_proxy_cidrs[0]", "write the range as 10.244.0.0/16"),
        ({"sso": {**SSO, "api_paths": [], "oauth2_proxy": {"trusted_proxy_cidrs": ["ingress-nginx"]}}, "ingress": INGRESS},
         "sso.oauth2_proxy.trusted_proxy_cidrs[0]", "not an address range"),
        ({"sso": {**SSO, "api_paths": [], "oauth2_proxy": {"trusted_proxy_cidrs": ["10.0.0.0/8", "10.0.0.0/8"]}},
          "ingress": INGRESS}, "sso.oauth2_proxy.trusted_proxy_cidrs[1]", "listed twice"),
        ({"sso": {**SSO, "api_paths": ["/api/v1/run/"], "oauth2_proxy": {"trusted_proxy_cidrs": ["10.244.0.0/16"]}},
          "ingress": INGRESS, "auth": {"enabled": True}}, "sso.oauth2_proxy.trusted_proxy_cidrs", "X-Forwarded-Uri"),
        # Across keys.
        ({"sso": SSO}, "sso.enabled", "set ingress.enabled: true"),
        ({"sso": SSO, "ingress": {**INGRESS, "tls": {"mode": "none"}}}, "ingress.tls.mode", "needs HTTPS"),
        ({"sso": SSO, "ingress": INGRESS, "service": {"type": "LoadBalancer"}}, "service.type",
         "publishes Langflow past the single sign-on"),
        ({"ingress": INGRESS}, "ingress.enabled", "no sign-in at all"),
    ],
)
def test_edge_rules_name_the_key(values, key, fragment):
    assert_refused(values, key, fragment)


def test_an_exposed_service_behind_sso_needs_an_explicit_yes():
    config = parse_config({"sso": {**SSO, "allow_exposed_langflow_service": True}, "ingress": INGRESS,
                           "service": {"type": "NodePort"}})
    assert config.service.type == "NodePort"


def test_an_ingress_with_langflow_s_own_login_needs_no_sso():
    assert parse_config({"ingress": INGRESS, "auth": {"enabled": True}}).ingress.enabled


# --- what the pieces say ---------------------------------------------------------------------

def test_cors_origins_are_the_ingress_hosts_or_nothing():
    assert spec.cors_origins(parse_config({}).ingress) == ""
    two = parse_config({"ingress": {**INGRESS, "hosts": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
                        "auth": {"enabled": True}})
    assert spec.cors_origins(two.ingress) == "https://a.example.com,https://b.example.com"


def prod():
    run = run_program(stack_values("prod"), "prod")
    assert run.error is None, run.error
    return run


def test_prod_declares_ingress_tls_oauth2_proxy_and_the_dex_client():
    run = prod()
    ingress = run.one(INGRESS_TYPE).inputs
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["langflow.platform.example.com"], "secretName": "langflow-tls"}]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"] == "platform-ca"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "100m"  # runtime.max_file_size_upload_mb
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    (rule,) = ingress["spec"]["rules"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    # Everything goes through oauth2-proxy, API clients too (it lets the API paths past the sign-in).
    assert routes == {"/": "langflow-oauth2-proxy"}


def test_one_client_secret_for_dex_and_oauth2_proxy():
    run = prod()
    (obj,) = plain(run.one(CONFIG_GROUP).inputs["objs"])
    secret = plain(run.named("kubernetes:core/v1:Secret", "langflow-oauth2-proxy").inputs["stringData"])
    assert obj["secret"] == secret["client-secret"]
    # Langflow's three and the session store's password: no second client secret.
    assert len(run.of_type("random:index/randomPassword:RandomPassword")) == 5
    cookie = base64.urlsafe_b64decode(secret["cookie-secret"])
    assert len(cookie) == 32  # an AES-256 key for oauth2-proxy


def test_the_dex_client_is_named_as_dex_names_it_with_exact_callbacks():
    run = prod()
    (obj,) = plain(run.one(CONFIG_GROUP).inputs["objs"])
    assert obj["apiVersion"] == "dex.coreos.com/v1" and obj["kind"] == "OAuth2Client"
    assert obj["metadata"] == {"name": DEX_NAMES["langflow"], "namespace": "cpaas-system",
                               "labels": {"app.kubernetes.io/managed-by": "pulumi", "app.kubernetes.io/part-of": "langflow"}}
    assert obj["id"] == "langflow" and obj["name"] == "Langflow"
    assert obj["redirectURIs"] == ["https://langflow.platform.example.com/oauth2/callback"]


def test_oauth2_proxy_is_configured_for_the_platform():
    run = prod()
    deployment = run.named(DEPLOYMENT, "langflow-oauth2-proxy").inputs
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    for flag in ("--provider=oidc", "--oidc-issuer-url=https://platform.example.com/dex", "--client-id=langflow",
                 "--upstream=http://langflow.langflow.svc:7860/", "--skip-provider-button=true",
                 "--code-challenge-method=S256", "--cookie-secure=true", "--upstream-timeout=3600s",
                 "--redirect-url=https://langflow.platform.example.com/oauth2/callback", "--http-address=0.0.0.0:4180"):
        assert flag in args, flag
    assert container["image"] == "quay.io/oauth2-proxy/oauth2-proxy:v7.15.6"
    assert {e["name"] for e in container["env"]} == {"OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET",
                                                     "OAUTH2_PROXY_REDIS_PASSWORD"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/ping"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    service = run.named("kubernetes:core/v1:Service", "langflow-oauth2-proxy").inputs
    assert service["metadata"]["name"] == "langflow-oauth2-proxy"  # as the chart named it
    budget = run.named("kubernetes:policy/v1:PodDisruptionBudget", "langflow-oauth2-proxy").inputs["spec"]
    pods = run.named(DEPLOYMENT, "langflow-oauth2-proxy").inputs["spec"]["template"]["metadata"]["labels"]
    assert budget["maxUnavailable"] == 1 and selector_matches(budget["selector"], pods) is True


def test_langflow_stays_private_and_allows_only_the_ingress_origins():
    run = prod()
    assert run.named("kubernetes:core/v1:Service", "langflow").inputs["spec"]["type"] == "ClusterIP"
    (container,) = run.named(DEPLOYMENT, "langflow").inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LANGFLOW_CORS_ORIGINS"] == "https://langflow.platform.example.com"
    assert run.outputs["urls"].value == ["https://langflow.platform.example.com"]


def test_dex_on_another_cluster_gets_a_provider_of_its_own():
    values = stack_values("prod")
    values["sso"] = {**values["sso"], "dex": {"namespace": "cpaas-system", "context": "global"}}
    run = run_program(values, "prod")
    assert run.error is None, run.error
    assert run.options[(CONFIG_GROUP, "langflow-dex-client")].provider is not None


def test_without_sso_the_ingress_routes_to_langflow():
    values = {**stack_values("dev"), "ingress": INGRESS, "auth": {"enabled": True}}
    run = run_program(values, "dev")
    assert run.error is None, run.error
    (rule,) = run.one(INGRESS_TYPE).inputs["spec"]["rules"]
    assert [p["backend"]["service"]["name"] for p in rule["http"]["paths"]] == ["langflow"]
    assert not run.of_type(CONFIG_GROUP)


# --- sign-out, API paths, forwarded headers ---------------------------------------------------------

def test_sessions_live_in_a_redis_beside_oauth2_proxy():
    run = prod()
    (container,) = run.named(DEPLOYMENT, "langflow-oauth2-proxy").inputs["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert "--session-store-type=redis" in args
    assert "--redis-connection-url=redis://langflow-oauth2-proxy-redis.langflow.svc:6379" in args
    (password,) = [e for e in container["env"] if e["name"] == "OAUTH2_PROXY_REDIS_PASSWORD"]
    assert password["valueFrom"] == {"secretKeyRef": {"name": "langflow-oauth2-proxy-redis", "key": "password"}}
    assert not any(a.startswith("--redis-password") for a in args)  # never in the pod spec's arguments

    redis = run.named(DEPLOYMENT, "langflow-oauth2-proxy-redis").inputs
    assert redis["spec"]["replicas"] == 1 and redis["spec"]["strategy"] == {"type": "Recreate"}
    pod = redis["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["image"] == "docker.io/library/redis:7.0.15"
    assert redis["metadata"]["annotations"]["langflow.org/image"] == "docker.io/library/redis:7.0.15"
    # Pod Security restricted, a read-only root, the official image's redis user.
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "fsGroup": 999,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert server["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                         "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                                         "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    # No persistence: no snapshots, no append-only file, no volume claim.
    assert server["args"][:8] == ["redis-server", "/etc/redis/redis.conf", "--port", "6379", "--save", "",
                                  "--appendonly", "no"]
    assert server["args"][8:] == ["--maxmemory", str(128 * 2**20 * 3 // 4), "--maxmemory-policy", "volatile-ttl"]
    assert {v["name"]: set(v) - {"name"} for v in pod["volumes"]} == {"config": {"secret"}, "data": {"emptyDir"}}
    assert server["readinessProbe"]["exec"]["command"][-1] == 'test "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG'
    assert server["livenessProbe"]["tcpSocket"] == {"port": "redis"}
    assert server["env"] == [{"name": "REDISCLI_AUTH", "valueFrom": {"secretKeyRef": {
        "name": "langflow-oauth2-proxy-redis", "key": "password"}}}]

    secret = plain(run.named("kubernetes:core/v1:Secret", "langflow-oauth2-proxy-redis").inputs["stringData"])
    assert secret["redis.conf"] == f"requirepass {secret['password']}\n"
    generated = run.named("random:index/randomPassword:RandomPassword", "langflow-oauth2-proxy-redis-password").inputs
    assert generated["length"] == 32 and generated["special"] is False  # kept in state: stable across updates
    service = run.named("kubernetes:core/v1:Service", "langflow-oauth2-proxy-redis").inputs
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 6379
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, redis["spec"]["template"]["metadata"]["labels"])
    assert run.outputs["images"].value["oauth2_proxy_redis"] == "docker.io/library/redis:7.0.15"


def test_the_session_store_honours_the_image_registry():
    values = stack_values("prod")
    values["image"] = {**values["image"], "registry": "registry.internal:5000"}
    run = run_program(values, "prod")
    assert run.error is None, run.error
    (server,) = run.named(DEPLOYMENT, "langflow-oauth2-proxy-redis").inputs["spec"]["template"]["spec"]["containers"]
    assert server["image"] == "registry.internal:5000/library/redis:7.0.15"


def test_the_cookie_session_store_runs_no_redis_and_says_what_signing_out_leaves():
    from settings import load_settings
    from pathlib import Path

    values = stack_values("prod")
    values["sso"] = {**values["sso"], "oauth2_proxy": {"session_store": "cookie"}}
    run = run_program(values, "prod")
    assert run.error is None, run.error
    assert not run.of_type("langflow:platform:SessionStore")
    (container,) = run.named(DEPLOYMENT, "langflow-oauth2-proxy").inputs["spec"]["template"]["spec"]["containers"]
    assert not any("redis" in a or "session-store" in a for a in container["args"])
    assert {e["name"] for e in container["env"]} == {"OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET"}
    warnings = load_settings(values, Path(__file__).resolve().parents[1]).warnings
    assert any("a copy of the cookie taken before keeps reaching Langflow until it expires" in w for w in warnings)
    redis = load_settings(stack_values("prod"), Path(__file__).resolve().parents[1]).warnings
    assert not any("session_store" in w for w in redis)


def test_api_paths_skip_the_sign_in_inside_oauth2_proxy():
    config = parse_config({"sso": {**SSO, "api_paths": ["/api/v1/run/", "/api/v1/webhook/"]}, "ingress": INGRESS,
                           "auth": {"enabled": True}, "image": {"tag": "1.13.0"}})
    args = spec.oauth2_proxy_args(config.sso, config.ingress, "http://langflow:7860/", redis_url="redis://r:6379")
    routes = [a.removeprefix("--skip-auth-route=") for a in args if a.startswith("--skip-auth-route=")]
    assert routes == ["^/api/v1/run/", "^/api/v1/webhook/"]
    # Anchored, Go's metacharacters escaped; `=` (oauth2-proxy's METHOD=path separator) as \x3d.
    assert spec.skip_auth_route("/api/v1/run/a.b=c+(d)/") == r"^/api/v1/run/a\.b\x3dc\+\(d\)/"
    assert not any(a.startswith("--skip-auth-strip-headers") for a in args)  # its default: true
    none = parse_config({"sso": {**SSO, "api_paths": []}, "ingress": INGRESS})
    assert not any(a.startswith("--skip-auth-route") for a in spec.oauth2_proxy_args(
        none.sso, none.ingress, "http://x/", redis_url="redis://r:6379"))


def test_oauth2_proxy_trusts_forwarded_headers_only_from_the_declared_proxies():
    config = parse_config({"sso": SSO, "ingress": INGRESS})
    args = spec.oauth2_proxy_args(config.sso, config.ingress, "http://x/", redis_url="redis://r:6379")
    # By default from no one: no --reverse-proxy at all.
    assert not any(a.startswith(("--reverse-proxy", "--trusted-proxy-ip", "--trusted-ip")) for a in args)
    trusted = parse_config({"sso": {**SSO, "api_paths": [], "oauth2_proxy": {
        "trusted_proxy_cidrs": ["10.244.0.0/16", "fd00:10:244::/56"]}}, "ingress": INGRESS})
    args = spec.oauth2_proxy_args(trusted.sso, trusted.ingress, "http://x/", redis_url="redis://r:6379")
    assert [a for a in args if a.startswith(("--reverse-proxy", "--trusted-proxy-ip"))] == [
        "--reverse-proxy=true", "--trusted-proxy-ip=10.244.0.0/16", "--trusted-proxy-ip=fd00:10:244::/56"]
    # Never --trusted-ip: in oauth2-proxy it lets those addresses past the sign-in.
    assert not any(a.startswith("--trusted-ip") for a in args)


def test_the_redis_session_store_needs_its_address():
    config = parse_config({"sso": SSO, "ingress": INGRESS})
    with pytest.raises(ValueError, match="redis_url is required"):
        spec.oauth2_proxy_args(config.sso, config.ingress, "http://x/")
