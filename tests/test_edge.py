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
         "not a DNS name"),
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
        ({"sso": {**SSO, "client_id": " "}, "ingress": INGRESS}, "sso.client_id", "printable characters"),
        ({"sso": {**SSO, "api_paths": ["/admin/"]}, "ingress": INGRESS}, "sso.api_paths[0]", "only Langflow's API paths"),
        ({"sso": {**SSO, "oauth2_proxy": {"email_domains": ["not a domain"]}}, "ingress": INGRESS},
         "sso.oauth2_proxy.email_domains[0]", "not an e-mail domain"),
        ({"sso": {**SSO, "oauth2_proxy": {"upstream_timeout_seconds": 5}}, "ingress": INGRESS},
         "sso.oauth2_proxy.upstream_timeout_seconds", "at least 30"),
        ({"sso": {**SSO, "oauth2_proxy": {"image": {"tag": "latest"}}}, "ingress": INGRESS},
         "sso.oauth2_proxy.image.tag", "moving tag"),
        ({"sso": {**SSO, "dex": {"namespace": "Cpaas"}}, "ingress": INGRESS}, "sso.dex.namespace", "namespace name"),
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
    # People go through oauth2-proxy; API clients with a key go straight to Langflow.
    assert routes == {"/": "langflow-oauth2-proxy", "/api/v1/run/": "langflow"}


def test_one_client_secret_for_dex_and_oauth2_proxy():
    run = prod()
    (obj,) = plain(run.one(CONFIG_GROUP).inputs["objs"])
    secret = plain(run.named("kubernetes:core/v1:Secret", "langflow-oauth2-proxy").inputs["stringData"])
    assert obj["secret"] == secret["client-secret"]
    assert len(run.of_type("random:index/randomPassword:RandomPassword")) == 4  # no second client secret
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
                 "--upstream=http://langflow.langflow.svc:7860/", "--reverse-proxy=true", "--skip-provider-button=true",
                 "--code-challenge-method=S256", "--cookie-secure=true", "--upstream-timeout=3600s",
                 "--redirect-url=https://langflow.platform.example.com/oauth2/callback", "--http-address=0.0.0.0:4180"):
        assert flag in args, flag
    assert container["image"] == "quay.io/oauth2-proxy/oauth2-proxy:v7.15.6"
    assert {e["name"] for e in container["env"]} == {"OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET"}
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
