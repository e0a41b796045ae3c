"""The keys added for the edge, SSO, backups, the ambassador, the database and NetworkPolicies, tried as a careful
and as a hostile operator would: each class of bad input is refused before anything registers, with its key (as
`pulumi config set --path` spells it) and the fix, and several problems come together."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from settings import ConfigError, load_settings
from settings.cron import schedule_problem
from settings.kube import key_path
from settings.loader import collect_problems
from settings.model import MAX_NAME_LENGTH, LangflowStackConfig
from settings.stack_file import plaintext_secret_problems, secret_paths
from settings.syntax import odd_character, url_problem
from tests.program import run_program, stack_values

INGRESS = {"enabled": True, "hosts": [{"host": "langflow.example.com"}],
           "tls": {"mode": "cert-manager", "cluster_issuer": "ca", "secret_name": "langflow-tls"}}
SSO = {"enabled": True, "issuer_url": "https://platform.example.com/dex"}
EDGE = {"ingress": INGRESS, "sso": SSO, "auth": {"enabled": True}}
AMBASSADOR = {"ambassador": {"enabled": True}}


def found(values: dict) -> list[tuple[str, str]]:
    return collect_problems(values)[1]


def assert_refused(values: dict, key: str, *fragments: str) -> None:
    """Exactly one problem, about `key`, saying each fragment."""
    problems = found(values)
    assert [path for path, _ in problems] == [key], problems
    for fragment in fragments:
        assert fragment in problems[0][1], problems[0][1]


def with_sso(**sso) -> dict:
    return {**EDGE, "sso": {**SSO, **sso}}


def egress(**destination) -> dict:
    return {"network_policies": {"egress": {"llm_apis": [destination]}}}


REFUSED = [
    # Schedules the API server's cron parser refuses, and ones that never fire.
    ({"backups": {"schedule": "0 3 * * 7"}}, "backups.schedule", ("day of week", "0 to 6")),
    ({"backups": {"schedule": "61 3 * * *"}}, "backups.schedule", ("minute", "0 to 59")),
    ({"backups": {"schedule": "*/0 * * * *"}}, "backups.schedule", ("positive",)),
    ({"backups": {"schedule": "CRON_TZ=Europe/Paris 0 3 * * *"}}, "backups.schedule", ("time zone",)),
    ({"backups": {"schedule": "@fortnightly"}}, "backups.schedule", ("not a cron macro",)),
    ({"backups": {"schedule": "@every 1x"}}, "backups.schedule", ("not a duration",)),
    ({"backups": {"schedule": "@every 30s"}}, "backups.schedule", ("more than once a minute",)),
    ({"backups": {"schedule": "0 3 31 2 *"}}, "backups.schedule", ("never fires",)),
    ({"backups": {"schedule": "0 3 31 4,6,9,11 *"}}, "backups.schedule", ("never fires",)),
    # URLs Python parses and Go refuses.
    (with_sso(issuer_url="https://platform.example.com:99999/dex"), "sso.issuer_url", ("1 to 65535",)),
    (with_sso(issuer_url="https://platform.example.com:0/dex"), "sso.issuer_url", ("1 to 65535",)),
    (with_sso(issuer_url="https://admin:pw@platform.example.com/dex"), "sso.issuer_url", ("user info",)),
    (with_sso(issuer_url="https://platform.example.com/d\tex"), "sso.issuer_url", ("U+0009",)),
    (with_sso(issuer_url="https://plаtform.example.com/dex"), "sso.issuer_url", ("character 11", "U+0430")),
    (with_sso(issuer_url="https://" + "a" * 64 + ".example.com/dex"), "sso.issuer_url", ("63 per label",)),
    (with_sso(issuer_url="https://[fe80::1%25eth0]/dex"), "sso.issuer_url", ("IPv6",)),
    (with_sso(issuer_url="https://platform.example.com/$(HOME)"), "sso.issuer_url", ("expands",)),
    ({"ingress": {**INGRESS, "hosts": [{"host": "a" * 64 + ".example.com"}]}}, "ingress.hosts[0].host",
     ("63 per label",)),
    ({"ingress": {**INGRESS, "hosts": [{"host": "bücher.example.com"}]}}, "ingress.hosts[0].host",
     ("U+00FC", "xn--bcher-kva.example.com")),
    ({"database": {"type": "postgresql", "postgresql": {"mode": "external", "external": {
        "host": "db." + "b" * 64 + ".example.com", "password_secret": {"name": "pg", "key": "password"}}}}},
     "database.postgresql.external.host", ("63 per label",)),
    ({"database": {"type": "postgresql", "postgresql": {"mode": "external", "external": {
        "host": "fe80::1%eth0", "password_secret": {"name": "pg", "key": "password"}}}}},
     "database.postgresql.external.host", ()),
    ({**AMBASSADOR, "ambassador": {"enabled": True, "cluster_domain": "cluster." + "c" * 64}},
     "ambassador.cluster_domain", ("63 per label",)),
    # Address ranges Go refuses, and `except` ranges that are not strict subsets.
    (egress(cidrs=["fe80::%eth0/64"]), "network_policies.egress.llm_apis[0].cidrs[0]", ("no zone",)),
    (egress(cidrs=["10.0.0.0/8"], excluded_cidrs=["10.0.0.0/8"]),
     "network_policies.egress.llm_apis[0].excluded_cidrs[0]", ("both opened and closed",)),
    (egress(cidrs=["10.0.0.0/8", "10.1.0.0/16"], excluded_cidrs=["10.1.0.0/16"]),
     "network_policies.egress.llm_apis[0].excluded_cidrs[0]", ("both opened and closed",)),
    # What Kubernetes expands in env and args, what Langflow splits on, what OAuth allows in a client id.
    (with_sso(client_id="lang$(HOME)flow"), "sso.client_id", ("expands",)),
    (with_sso(client_id="langflow,admin"), "sso.client_id", ("comma", "audiences")),
    (with_sso(client_id="langflöw"), "sso.client_id", ("printable ASCII", "U+00F6")),
    (with_sso(identity={"mode": "per-user", "username_claim": "$(EMAIL)"}), "sso.identity.username_claim",
     ("expands",)),
    # Ingress paths that leave the callback unrouted; annotations: invalid, overriding, or around the sign-in.
    ({**with_sso(), "ingress": {**INGRESS, "hosts": [{"host": "langflow.example.com", "paths": [{"path": "/app"}]}]}},
     "ingress.hosts[0].paths", ("/oauth2/callback",)),
    ({**with_sso(), "ingress": {**INGRESS, "hosts": [{"host": "langflow.example.com", "paths": [
        {"path": "/", "path_type": "Exact"}]}]}}, "ingress.hosts[0].paths", ("/oauth2/callback",)),
    ({"ingress": {**INGRESS, "annotations": {"bad key!": "x"}}, "auth": {"enabled": True}},
     'ingress.annotations["bad key!"]', ("annotation key",)),
    ({"ingress": {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "60"}},
      "auth": {"enabled": True}}, 'ingress.annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]',
     ("ingress.timeout_seconds",)),
    ({"ingress": {**INGRESS, "annotations": {"cert-manager.io/cluster-issuer": "other"}}, "auth": {"enabled": True}},
     'ingress.annotations["cert-manager.io/cluster-issuer"]', ("ingress.tls.cluster_issuer",)),
    ({**EDGE, "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}},
     'annotations["nginx.ingress.kubernetes.io/proxy-body-size"]', ("runtime.max_file_size_upload_mb",)),
    ({**EDGE, "ingress": {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "x"}}},
     'ingress.annotations["nginx.ingress.kubernetes.io/configuration-snippet"]', ("raw nginx configuration",)),
    ({**EDGE, "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "x"}},
     'annotations["nginx.ingress.kubernetes.io/server-snippet"]', ("raw nginx configuration",)),
    ({**EDGE, "ingress": {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/mirror-target": "http://x"}}},
     'ingress.annotations["nginx.ingress.kubernetes.io/mirror-target"]', ("cookies",)),
    ({**EDGE, "ingress": {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/server-alias": "x.example.com"}}},
     'ingress.annotations["nginx.ingress.kubernetes.io/server-alias"]', ("host names",)),
    # API paths around the sign-in: only the API-key endpoints, and never into a Langflow without login.
    ({**with_sso(api_paths=["/api/v1/run/"]), "auth": {"enabled": False}}, "sso.api_paths", ("no login",)),
    (with_sso(api_paths=["/api/"]), "sso.api_paths[0]", ("auto-login",)),
    (with_sso(api_paths=["/api/v1/webhook/"]), "sso.api_paths[0]", ("without any key", "1.13.0")),
    (with_sso(api_paths=["/api/v1/run/../login/"]), "sso.api_paths[0]", ("only Langflow's API paths",)),
    ({**AMBASSADOR, "ambassador": {"enabled": True, "allowed_paths": ["/api/v1/run/../"]}},
     "ambassador.allowed_paths[0]", ("prefix of Langflow's API",)),
    # Settings that do nothing.
    ({"database": {"type": "url", "url_secret": {"name": "db"}}, "backups": {"schedule": "0 4 * * *"}},
     "backups.schedule", ("no effect",)),
    ({"backups": {"enabled": False, "scheduled_kept": 3}}, "backups.scheduled_kept", ("no effect",)),
    ({"flows": {"source": "none", "update": "restart"}}, "flows.update", ("flows.source: folder",)),
    ({"storage": {"enabled": False, "size": "5Gi"}, "database": {"type": "url", "url_secret": {"name": "db"}}},
     "storage.size", ("no effect",)),
    ({"metrics": {"enabled": False, "langflow_port": 9100}}, "metrics.langflow_port", ("no effect",)),
    ({"ambassador": {"replicas": 3}}, "ambassador.replicas", ("no effect",)),
    ({"ingress": {"hosts": [{"host": "langflow.example.com"}]}}, "ingress.hosts", ("no effect",)),
    ({**EDGE, "sso": {**SSO, "identity": {"mode": "shared"}, "dex": {"id_token_expiry_minutes": 60}}},
     "sso.dex.id_token_expiry_minutes", ("per-user",)),
    # Namespaces that collide with the stack's own.
    ({**AMBASSADOR, "ambassador": {"enabled": True, "sidecar_namespaces": ["langflow"]}},
     "ambassador.sidecar_namespaces[0]", ("stack's own namespace",)),
    ({"network_policies": {"api_client_namespaces": ["langflow"]}}, "network_policies.api_client_namespaces[0]",
     ("stack's own namespace",)),
    ({"auth": {"enabled": True, "superuser": "admin$(HOSTNAME)"}}, "auth.superuser", ("expands",)),
    ({"flows": {"mount_path": "/app/$(HOME)"}}, "flows.mount_path", ("expands",)),
    ({"flows": {"folder": "fl\x00ows"}}, "flows.folder", ("control characters", "U+0000")),
    # Look-alike characters are pointed at.
    ({"namespace": "lаngflow"}, "namespace", ("character 2", "CYRILLIC SMALL LETTER A")),
    ({"name": "langflow\u200b"}, "name", ("character 9", "ZERO WIDTH SPACE")),
    ({"labels": {"tеam": "a"}}, 'labels["tеam"]', ("character 2", "CYRILLIC SMALL LETTER IE")),
    ({"labels": {"team": "ops\u00a0"}}, "labels.team", ("character 4", "NO-BREAK SPACE")),
    # The documented maximum name still makes valid names.
    ({"name": "x" * (MAX_NAME_LENGTH + 1)}, "name", (f"at most {MAX_NAME_LENGTH}",)),
]


@pytest.mark.parametrize(("values", "key", "fragments"), REFUSED, ids=[f"{i}-{case[1]}" for i, case in enumerate(REFUSED)])
def test_each_class_is_refused_with_its_key_and_fix(values, key, fragments):
    assert_refused(values, key, *fragments)


ACCEPTED = [
    with_sso(oauth2_proxy={"email_domains": ["*.example.com", "example.org"]}),
    with_sso(issuer_url="https://[2001:db8::1]:8443/dex"),
    with_sso(issuer_url="http://127.0.0.1:5556/dex"),
    {**with_sso(api_paths=["/api/v1/run/", "/api/v1/webhook/"]), "image": {"tag": "1.13.0"}},
    {**with_sso(), "ingress": {**INGRESS, "hosts": [{"host": "langflow.example.com", "paths": [
        {"path": "/"}, {"path": "/oauth2", "path_type": "Prefix"}]}]}},
    {**EDGE, "ingress": {**INGRESS, "annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8"}}},
    {"backups": {"schedule": "0 3 29 2 *"}},
    {"backups": {"schedule": "15 2 * JAN-MAR mon-fri"}},
    {"backups": {"schedule": "@weekly"}},
    {"backups": {"schedule": "@every 1h30m"}},
    egress(cidrs=["10.0.0.0/8"], excluded_cidrs=["10.1.0.0/16"]),
    {"name": "x" * MAX_NAME_LENGTH},
]


@pytest.mark.parametrize("values", ACCEPTED)
def test_valid_values_are_accepted(values):
    assert found(values) == []


def test_two_problems_in_one_section_come_together():
    problems = found({"auth": {"enabled": True, "superuser_password": "short",
                               "access_token_expire_seconds": 7200, "refresh_token_expire_seconds": 3600}})
    assert [path for path, _ in problems] == ["auth.superuser_password", "auth.refresh_token_expire_seconds"]
    flows = found({"flows": {"source": "none", "mount_path": "/x", "default_flow": "a", "update": "sync"}})
    assert [path for path, _ in flows] == ["flows.mount_path", "flows.default_flow", "flows.update"]
    # One section's cross-key checks report every problem, the missing ones too.
    ingress = found({"ingress": {"enabled": True, "hosts": [{"host": "a.example.com"}, {"host": "a.example.com"}],
                                 "tls": {"mode": "secret"}}})
    assert [path for path, _ in ingress] == ["ingress.tls.secret_name", "ingress.hosts[1].host"]
    egress_problems = found(egress(excluded_cidrs=["10.0.0.0/8"]))
    assert [path for path, _ in egress_problems] == ["network_policies.egress.llm_apis[0].cidrs",
                                                     "network_policies.egress.llm_apis[0].excluded_cidrs[0]"]


def test_map_key_paths_work_with_pulumi_config_set_path():
    # Pulumi's ParsePropertyPath: a double-quoted key, `\"` the only escape, everything else taken as is.
    assert key_path("team") == ".team"
    assert key_path("example.com/team") == '["example.com/team"]'
    assert key_path('a"b') == '["a\\"b"]'
    assert key_path("ü") == '["ü"]'


def test_the_url_parser_agrees_with_go_on_edge_cases():
    assert url_problem("https://platform.example.com/dex", example="x") is None
    assert url_problem("https://platform.example.com:65535/dex", example="x") is None
    for bad in ("https://platform.example.com:65536/dex", "https://platform.example.com:-1/dex",
                "https://platform.example.com:/dex", "https:///dex", "https://platform.example.com/dex?x=1",
                "https://PLATFORM.example.com/dex", "https://platform.example.com/dex\x7f"):
        assert url_problem(bad, example="x"), bad


def test_odd_characters_are_named():
    assert odd_character("plain-ascii") is None
    assert "U+00A0 NO-BREAK SPACE" in odd_character("a\u00a0b")
    assert "character 3" in odd_character("ab\u0435")


def test_schedules_match_the_api_server_parser():
    # robfig/cron v3 ParseStandard, as the API server uses it.
    for good in ("0 3 * * *", "*/15 * * * *", "5/15 * * * *", "0 0 1-7 * 1", "0 3 ? * SUN", "@hourly", "0 0 31 * *"):
        assert schedule_problem(good) is None, good
    for bad in ("0 3 * *", "0 3 * * * *", "0 24 * * *", "0 3 0 * *", "0 3 * 13 *", "0 3 * * 1-7", "0 3 5-1 * *",
                "0 3 * * MON-", "1-2-3 * * * *", "*/5/2 * * * *", "TZ=UTC 0 3 * * *"):
        assert schedule_problem(bad), bad


def test_a_secret_in_plain_text_in_the_stack_file_is_refused(tmp_path: Path):
    (tmp_path / "Pulumi.qa.yaml").write_text(textwrap.dedent("""\
        config:
          langflow:auth:
            enabled: true
            superuser_password: a-long-enough-password
            secret_key:
              secure: v1:AAAA
          langflow:sso:
            client_secret: plain
            dex:
              kubeconfig: /etc/kubeconfig
        """))
    problems = plaintext_secret_problems(tmp_path, "langflow/qa", LangflowStackConfig)
    assert [path for path, _ in problems] == ["sso.client_secret", "auth.superuser_password"]
    assert "pulumi config set --secret --path auth.superuser_password <value> -s qa" in problems[1][1]
    (tmp_path / "Pulumi.qa.yaml").write_text("config:\n  langflow:sso:\n    dex:\n      kubeconfig: |\n"
                                             "        apiVersion: v1\n        clusters: []\n")
    assert [p for p, _ in plaintext_secret_problems(tmp_path, "qa", LangflowStackConfig)] == ["sso.dex.kubeconfig"]
    # Every secret key of the model is covered, as new ones come.
    assert {".".join(p) for p in secret_paths(LangflowStackConfig)} >= {
        "auth.superuser_password", "auth.secret_key", "sso.client_secret", "sso.dex.kubeconfig",
        "database.postgresql.external.password"}


def test_load_settings_reports_the_plain_text_secret(tmp_path: Path):
    (tmp_path / "Pulumi.qa.yaml").write_text("config:\n  langflow:auth:\n    enabled: true\n"
                                             "    superuser_password: a-long-enough-password\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"auth": {"enabled": True, "superuser_password": "a-long-enough-password"},
                       "flows": {"source": "none"}}, tmp_path, stack="langflow/qa")
    assert caught.value.problems[0].startswith("langflow:auth.superuser_password: is in plain text")


def test_a_flow_folder_the_file_system_refuses_is_a_problem_not_a_traceback(tmp_path: Path):
    with pytest.raises(ConfigError) as caught:
        load_settings({"flows": {"folder": "f" * 300}}, tmp_path)
    assert caught.value.problems[0].startswith("langflow:flows.folder: ")
    assert "cannot be opened" in caught.value.problems[0]


def test_a_flow_file_that_is_valid_json_but_not_an_object_is_a_problem_not_a_traceback(tmp_path: Path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "list.json").write_text("[1, 2]")
    (tmp_path / "flows" / "text.json").write_text('"flow"')
    with pytest.raises(ConfigError) as caught:
        load_settings({}, tmp_path)
    assert [p.split(":")[0] for p in caught.value.problems] == ["flows/list.json", "flows/text.json"]
    assert all("must be a JSON object" in p for p in caught.value.problems)


# Kubernetes' limits on the names the program makes: a Job's name is its pods' label (63), a CronJob's Jobs add
# 11 characters (52), a StatefulSet's pods add a revision hash to a label (52 leaves room), DNS labels (63).
NAME_LIMITS = {"Job": 63, "CronJob": 52, "StatefulSet": 52, "Service": 63, "Namespace": 63}


def every_feature(stack: str) -> dict:
    values = stack_values(stack)
    values.update(name="n" * MAX_NAME_LENGTH, namespace="s" * 63)
    return values


@pytest.mark.parametrize("values", [
    every_feature("prod"), every_feature("dev"),
    {**every_feature("prod"), "image": {"repository": "langflowai/langflow", "tag": "1.13.0"},
     "ambassador": {"enabled": True, "sidecar_namespaces": ["pipelines"]}},
    {**every_feature("prod"), "database": {"type": "postgresql", "postgresql": {"mode": "external", "external": {
        "host": "db.example.com", "password_secret": {"name": "pg", "key": "password"},
        "bootstrap": {"admin_secret": {"name": "pg-admin"}}}}}, "backups": {"enabled": True}},
], ids=["prod", "dev", "prod-1.13-sidecars", "prod-external-bootstrap"])
def test_every_name_made_from_the_longest_name_fits_kubernetes(values):
    from tests.program import FakeCluster
    run = run_program(values, "prod", cluster=FakeCluster(secrets={"pg": {"password": "p"},
                                                                    "pg-admin": {"username": "u", "password": "p"}}))
    assert run.error is None, run.error
    names = Counter()
    for resource in run.resources:
        if not resource.type.startswith("kubernetes:"):
            continue
        kind = resource.type.rsplit(":", 1)[1]
        metadata = resource.state.get("metadata") or {}
        name = metadata.get("name", "")
        assert len(name) <= NAME_LIMITS.get(kind, 253), (kind, name, len(name))
        names[(kind, metadata.get("namespace"), name)] += 1
        for labels in re.findall(r"'(?:labels|matchLabels)': (\{[^{}]*\})", str(resource.state)):
            assert all(len(value) <= 63 for value in eval(labels).values()), (kind, name, labels)  # noqa: S307
    # No object is registered twice: the engine would stop mid-update.
    assert [key for key, count in names.items() if count > 1] == []
