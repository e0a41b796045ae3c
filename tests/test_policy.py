"""The policy pack (policy/): every policy on a violating and a compliant resource, through the pack's own
policy objects, with props built the way the engine hands them over (a protobuf Struct, so numbers are
floats, wrapped in the SDK's unknown-checking proxies). No Pulumi engine; the real CLI runs the pack in
tests/integration/test_policy_real.py.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi_policy import (
    EnforcementLevel, PolicyResource, ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policy import rules
from policy.__main__ import PACK_NAME, POLICIES, plain
from tests.program import run_program, stack_values

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = UNKNOWN_STRING_VALUE  # what the engine sends for a value not known in a preview
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
JOB = "kubernetes:batch/v1:Job"
CRONJOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
CNPG = "kubernetes:postgresql.cnpg.io/v1:Cluster"
MANDATORY = ["pinned-images", "container-resources", "pod-security-restricted", "ingress-tls",
             "no-literal-credentials", "langflow-authentication"]
ADVISORY = ["pod-disruption-budgets", "network-policies"]


# --- running the pack's policies as the analyzer does -----------------------------------------------

def engine_props(props: dict[str, Any]) -> Any:
    """Props as the policy SDK receives them: through a protobuf Struct, deserialized, proxied."""
    message = struct_pb2.Struct()
    message.update(props)
    return unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(message)))


def policy(name: str):
    return next(p for p in POLICIES if p.name == name)


def check(name: str, resource_type: str, props: dict[str, Any], resource_name: str = "res") -> list[str]:
    """The messages the pack's resource policy `name` reports for one resource."""
    found = policy(name)
    assert isinstance(found, ResourceValidationPolicy)
    reported: list[str] = []
    urn = f"urn:pulumi:dev::langflow::{resource_type}::{resource_name}"
    args = ResourceValidationArgs(resource_type, engine_props(props), urn, resource_name, None, None, None, None)
    found.validate(args, lambda message, urn=None: reported.append(message))
    return reported


def check_stack(name: str, resources: list[tuple[str, dict[str, Any]]], *, stack: str = "prod",
                config: Optional[dict[str, Any]] = None) -> list[tuple[str, Optional[str]]]:
    """(message, urn) of what the pack's stack policy `name` reports for these (type, props) resources."""
    found = policy(name)
    assert isinstance(found, StackValidationPolicy)
    reported: list[tuple[str, Optional[str]]] = []
    policy_resources = []
    for index, (resource_type, props) in enumerate(resources):
        name_ = get_name(props) or f"r{index}"
        urn = f"urn:pulumi:{stack}::langflow::{resource_type}::{name_}"
        policy_resources.append(PolicyResource(resource_type, engine_props(props), urn, name_, None, None, None, [], {}))
    found.validate(StackValidationArgs(policy_resources, config), lambda m, urn=None: reported.append((m, urn)))
    return reported


def get_name(props: dict[str, Any]) -> Optional[str]:
    name = props.get("metadata", {}).get("name")
    return name if isinstance(name, str) and name != UNKNOWN else None


# --- objects ------------------------------------------------------------------------------------------

def container(name: str = "app", image: str = "example/app:1.2.3", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        **extra,
    }


def pod_spec(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": list(containers) or [container()],
        **extra,
    }


def deployment(spec: Optional[dict[str, Any]] = None, *, name: str = "web", namespace: str = "apps",
               labels: Optional[dict[str, str]] = None, replicas: int = 1,
               pod_labels: Optional[dict[str, str]] = None) -> dict[str, Any]:
    pod_labels = pod_labels or {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app.kubernetes.io/name": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": pod_labels},
                 "template": {"metadata": {"labels": pod_labels}, "spec": spec or pod_spec()}},
    }


def cron_job(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "nightly", "namespace": "apps"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": spec}}}}}


def ingress(rules_: list[dict[str, Any]], tls: Any = None, *, name: str = "web", namespace: str = "apps") -> dict:
    spec: dict[str, Any] = {"ingressClassName": "nginx", "rules": rules_}
    if tls is not None:
        spec["tls"] = tls
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def rule(host: Optional[str], service: str = "web", port: int = 80) -> dict[str, Any]:
    out: dict[str, Any] = {"http": {"paths": [{"path": "/", "pathType": "Prefix",
                                               "backend": {"service": {"name": service, "port": {"number": port}}}}]}}
    if host is not None:
        out["host"] = host
    return out


# --- the pack's shape -----------------------------------------------------------------------------------

def test_the_pack_has_each_policy_once_with_its_enforcement_level_and_a_description():
    assert [p.name for p in POLICIES] == MANDATORY + ADVISORY
    for p in POLICIES:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", p.name), p.name
        assert len(p.description) > 80, p.name
        expected = EnforcementLevel.MANDATORY if p.name in MANDATORY else EnforcementLevel.ADVISORY
        assert p.enforcement_level == expected, p.name
    assert {p.name for p in POLICIES if isinstance(p, StackValidationPolicy)} == {
        "langflow-authentication", "pod-disruption-budgets", "network-policies"}
    assert PACK_NAME == "langflow-policy"
    # The CPU limit is left out on purpose, and the description says why.
    assert "throttl" in policy("container-resources").description
    schema = policy("langflow-authentication").config_schema
    assert schema.properties["production_stacks"] == {
        "type": "array", "items": {"type": "string"}, "default": ["prod"],
        "description": schema.properties["production_stacks"]["description"]}


def test_the_pack_runs_in_the_project_virtualenv_with_python():
    document = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert document["runtime"]["name"] == "python"
    assert document["runtime"]["options"]["virtualenv"] == "../.venv"
    assert (ROOT / "policy" / document["runtime"]["options"]["virtualenv"]).resolve() == (ROOT / ".venv").resolve()
    assert document["description"]
    assert "pulumi-policy==" in (ROOT / "requirements.in").read_text()


def test_the_pack_uses_nothing_of_the_product():
    for path in (ROOT / "policy").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in {"components", "settings", "releases", "tests"}, (path, name)


def test_unknown_values_reach_the_rules_as_unknown_not_as_errors():
    props = engine_props({"spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "app", "image": UNKNOWN, "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": UNKNOWN}}}]}]}}}})
    value = plain(props)
    assert value["spec"]["replicas"] == 2.0  # protobuf numbers are floats
    (c,) = value["spec"]["template"]["spec"]["containers"]
    assert c["image"] is rules.UNKNOWN and c["env"][0]["valueFrom"]["secretKeyRef"]["name"] is rules.UNKNOWN


# --- pinned-images ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "problem"), [
    ("nginx:latest", "uses the moving tag 'latest'"),
    ("ghcr.io/org/app:main", "uses the moving tag 'main'"),
    ("quay.io/org/app:Stable", "uses the moving tag 'Stable'"),
    ("busybox", "has no tag (Kubernetes then pulls ':latest')"),
    ("registry.local:5000/team/app", "has no tag"),
    ("app@sha256:abc", "has a malformed digest"),
])
def test_pinned_images_refuses_moving_or_missing_tags(image, problem):
    (message,) = check("pinned-images", DEPLOYMENT, deployment(pod_spec(container(image=image))))
    assert message.startswith(f"Deployment apps/web: container 'app' (spec.template.spec.containers[0].image) "
                              f"image '{image}' {problem}")
    assert message.endswith("pin a version tag (e.g. repository:1.2.3) or a digest (repository@sha256:...).")


@pytest.mark.parametrize("image", [
    "langflowai/langflow:1.6.4", "postgres:17.6", "registry.local:5000/team/app:2024.10.1", "nginx:latest-dev",
    "nginx@sha256:" + "a" * 64, "nginx:latest@sha256:" + "b" * 64, UNKNOWN,
])
def test_pinned_images_accepts_versions_digests_and_unknown_images(image):
    assert check("pinned-images", DEPLOYMENT, deployment(pod_spec(container(image=image)))) == []


def test_pinned_images_looks_at_init_containers_of_a_cron_jobs_job_template():
    spec = pod_spec(container(), initContainers=[container("plan", "example/tool:nightly")])
    (message,) = check("pinned-images", CRONJOB, cron_job(spec))
    assert message.startswith("CronJob apps/nightly: container 'plan' "
                              "(spec.jobTemplate.spec.template.spec.initContainers[0].image) image "
                              "'example/tool:nightly' uses the moving tag 'nightly'")


def test_pinned_images_checks_cloudnative_pg_image_name():
    cluster = {"metadata": {"name": "db", "namespace": "apps"}, "spec": {"instances": 1}}
    (missing,) = check("pinned-images", CNPG, cluster)
    assert missing.startswith("Cluster apps/db: spec.imageName is not set")
    cluster["spec"]["imageName"] = "ghcr.io/cloudnative-pg/postgresql:latest"
    (moving,) = check("pinned-images", CNPG, cluster)
    assert moving.startswith("Cluster apps/db: spec.imageName 'ghcr.io/cloudnative-pg/postgresql:latest' uses the "
                             "moving tag 'latest'")
    cluster["spec"]["imageName"] = "ghcr.io/cloudnative-pg/postgresql:17.6"
    assert check("pinned-images", CNPG, cluster) == []


def test_an_object_named_by_pulumi_goes_by_its_pulumi_name():
    job = {"metadata": {"namespace": "apps", "name": UNKNOWN}, "spec": {"template": {"spec": pod_spec(
        container(image="app"))}}}
    (message,) = check("pinned-images", JOB, job, resource_name="migrate")
    assert message.startswith("Job apps/migrate (Pulumi name): container 'app'")


# --- container-resources -----------------------------------------------------------------------------------

def test_container_resources_wants_cpu_and_memory_requests_and_a_memory_limit():
    bare = container()
    bare["resources"] = {"limits": {"cpu": "1"}}
    (message,) = check("container-resources", DEPLOYMENT, deployment(pod_spec(bare)))
    path = "spec.template.spec.containers[0]"
    assert message == (f"Deployment apps/web: container 'app' has no {path}.resources.requests.cpu, "
                       f"{path}.resources.requests.memory, {path}.resources.limits.memory: set resources.requests.cpu "
                       "(e.g. 100m); resources.requests.memory (e.g. 256Mi); resources.limits.memory (at least the "
                       "memory request).")


def test_container_resources_covers_init_containers():
    init = container("migrate")
    del init["resources"]["limits"]
    (message,) = check("container-resources", JOB, {"metadata": {"name": "m", "namespace": "apps"},
                                                   "spec": {"template": {"spec": pod_spec(container(),
                                                                                          initContainers=[init])}}})
    assert message.startswith("Job apps/m: container 'migrate' has no "
                              "spec.template.spec.initContainers[0].resources.limits.memory: set resources.limits.memory")


def test_container_resources_needs_no_cpu_limit_and_skips_unknown_values():
    assert check("container-resources", DEPLOYMENT, deployment()) == []  # no CPU limit: fine
    unknown = container()
    unknown["resources"] = UNKNOWN
    assert check("container-resources", DEPLOYMENT, deployment(pod_spec(unknown))) == []


# --- pod-security-restricted ----------------------------------------------------------------------------

def test_pod_security_accepts_a_restricted_pod():
    net_bind = container(ports=[{"containerPort": 80}])
    net_bind["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    spec = pod_spec(net_bind, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "d"}},
                                       {"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}])
    assert check("pod-security-restricted", DEPLOYMENT, deployment(spec)) == []


def test_pod_security_accepts_container_level_settings_without_pod_level_ones():
    c = container()
    c["securityContext"].update(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})
    assert check("pod-security-restricted", POD, {"metadata": {"name": "p", "namespace": "apps"},
                                                   "spec": {"containers": [c]}}) == []


def test_pod_security_reports_each_restricted_field():
    c = container()
    c["securityContext"] = {"privileged": True, "runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]},
                            "seccompProfile": {"type": "Unconfined"}}
    c["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    spec = {"hostNetwork": True, "hostPID": True, "hostIPC": True, "containers": [c],
            "volumes": [{"name": "host", "hostPath": {"path": "/var/run"}}]}
    messages = check("pod-security-restricted", DEPLOYMENT, deployment(spec))
    at = "Deployment apps/web: container 'app' (spec.template.spec.containers[0]"
    assert messages == [
        "Deployment apps/web: spec.template.spec.hostNetwork is true: remove it (Pod Security \"restricted\" shares no "
        "host namespace).",
        "Deployment apps/web: spec.template.spec.hostPID is true: remove it (Pod Security \"restricted\" shares no host "
        "namespace).",
        "Deployment apps/web: spec.template.spec.hostIPC is true: remove it (Pod Security \"restricted\" shares no host "
        "namespace).",
        "Deployment apps/web: volume 'host' (spec.template.spec.volumes[0].hostPath) is of type hostPath, which Pod "
        "Security \"restricted\" refuses: use one of configMap, csi, downwardAPI, emptyDir, ephemeral, "
        "persistentVolumeClaim, projected, secret (a persistentVolumeClaim instead of a hostPath).",
        f"{at}.securityContext.runAsNonRoot) is not set, nor spec.template.spec.securityContext.runAsNonRoot: set "
        "runAsNonRoot: true on the pod or the container.",
        f"{at}.securityContext.runAsUser) is 0 (root): set a non-zero UID.",
        f"{at}.securityContext.privileged) is true: remove it.",
        f"{at}.securityContext.allowPrivilegeEscalation) is not set: set it to false.",
        f"{at}.securityContext.capabilities.drop) does not drop ALL: set capabilities.drop: [ALL].",
        f"{at}.securityContext.capabilities.add) adds SYS_ADMIN: add none (NET_BIND_SERVICE is the only one Pod "
        "Security \"restricted\" allows).",
        f"{at}.securityContext.seccompProfile.type) is Unconfined: set RuntimeDefault (or Localhost).",
        f"{at}.ports[0].hostPort) is 8080: remove it and reach the pod through a Service.",
    ]


def test_pod_security_pod_level_settings_cannot_be_turned_off_by_a_container():
    c = container()
    c["securityContext"]["runAsNonRoot"] = False
    c["securityContext"]["allowPrivilegeEscalation"] = True
    messages = check("pod-security-restricted", STATEFULSET, {
        "metadata": {"name": "db", "namespace": "apps"}, "spec": {"template": {"spec": pod_spec(c)}}})
    assert messages == [
        "StatefulSet apps/db: container 'app' (spec.template.spec.containers[0].securityContext.runAsNonRoot) is false: "
        "set it to true.",
        "StatefulSet apps/db: container 'app' (spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation) "
        "is true: set it to false.",
    ]


def test_pod_security_skips_unknown_security_contexts():
    c = container()
    c["securityContext"] = UNKNOWN
    assert check("pod-security-restricted", DEPLOYMENT, deployment(pod_spec(c))) == []


# --- ingress-tls -------------------------------------------------------------------------------------------

def test_ingress_tls_wants_spec_tls():
    (message,) = check("ingress-tls", INGRESS, ingress([rule("a.example.com")]))
    assert message == ("Ingress apps/web: spec.tls is not set, so it serves plain HTTP: add spec.tls with a "
                       "certificate Secret (secretName) for a.example.com.")


def test_ingress_tls_wants_every_rule_host_covered():
    tls = [{"hosts": ["a.example.com"], "secretName": "a-tls"}]
    messages = check("ingress-tls", INGRESS, ingress([rule("a.example.com"), rule("b.example.com"), rule(None)], tls))
    assert messages == [
        "Ingress apps/web: spec.rules[1].host 'b.example.com' is not in any spec.tls[].hosts: add it to spec.tls "
        "(with a certificate that names it).",
        "Ingress apps/web: spec.rules[2] has no host (it answers for any host) and no spec.tls entry without hosts "
        "covers it: give the rule a host and list it in spec.tls[].hosts.",
    ]


def test_ingress_tls_accepts_covered_hosts_wildcards_and_unknowns():
    tls = [{"hosts": ["a.example.com", "*.apps.example.com"], "secretName": "tls"}]
    assert check("ingress-tls", INGRESS, ingress([rule("a.example.com"), rule("x.apps.example.com")], tls)) == []
    (deep,) = check("ingress-tls", INGRESS, ingress([rule("x.y.apps.example.com")], tls))
    assert "'x.y.apps.example.com' is not in any spec.tls[].hosts" in deep  # a wildcard covers one label
    assert check("ingress-tls", INGRESS, ingress([rule("a.example.com")], UNKNOWN)) == []
    assert check("ingress-tls", INGRESS, ingress([rule(UNKNOWN)], [{"hosts": ["a.example.com"]}])) == []


# --- no-literal-credentials ------------------------------------------------------------------------------

@pytest.mark.parametrize("env", [
    {"name": "DB_PASSWORD", "value": "hunter2"},
    {"name": "OPENAI_API_KEY", "value": "sk-123"},
    {"name": "GITHUB_TOKEN", "value": "ghp_1"},
    {"name": "OAUTH2_PROXY_CLIENT_SECRET", "value": "s"},
    {"name": "TLS_PRIVATE_KEY", "value": "-----BEGIN"},
    {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "{...}"},
    {"name": "PGPASSWORD", "value": "x"},
])
def test_no_literal_credentials_refuses_credential_env_values(env):
    (message,) = check("no-literal-credentials", DEPLOYMENT, deployment(pod_spec(container(env=[env]))))
    assert message == (f"Deployment apps/web: container 'app' (spec.template.spec.containers[0].env[0], {env['name']}) "
                       "holds a credential as a literal value: put it in a Secret and use valueFrom.secretKeyRef "
                       "instead of value.")


def test_no_literal_credentials_refuses_urls_with_passwords():
    env = [{"name": "LANGFLOW_DATABASE_URL", "value": "postgresql://langflow:s3cret@db:5432/langflow"}]
    (message,) = check("no-literal-credentials", DEPLOYMENT, deployment(pod_spec(container(env=env))))
    assert message == ("Deployment apps/web: container 'app' (spec.template.spec.containers[0].env[0], "
                       "LANGFLOW_DATABASE_URL) is a URL with a password in it (user:password@): put the whole URL in a "
                       "Secret and use valueFrom.secretKeyRef instead of value.")


@pytest.mark.parametrize("arg", ["--client-secret=abc", "--cookie-secret=0123456789abcdef", "--password=hunter2",
                                 "-api-key=k"])
def test_no_literal_credentials_refuses_secret_flags(arg):
    (message,) = check("no-literal-credentials", DEPLOYMENT, deployment(pod_spec(container(args=["--x=1", arg]))))
    flag = arg.lstrip("-").split("=")[0]
    assert message == (f"Deployment apps/web: container 'app' (spec.template.spec.containers[0].args[1]) passes "
                       f"--{flag}= as a literal: put the value in a Secret, read it into env with "
                       "valueFrom.secretKeyRef and pass $(VAR), or use the program's own env/file option for it.")


def test_no_literal_credentials_accepts_references_and_what_only_looks_like_a_credential():
    env = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "LANGFLOW_ACCESS_TOKEN_EXPIRE_SECONDS", "value": "3600"},
        {"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/pw"},
        {"name": "LANGFLOW_DATABASE_URL", "value": "sqlite:////app/data/langflow.db"},
        {"name": "DATABASE_URL", "value": "postgresql://langflow@db:5432/langflow"},
        {"name": "DSN", "value": "postgresql://langflow:$(DB_PASSWORD)@db/langflow"},
        {"name": "CONFIRM_SECRET", "value": ""},
        {"name": "API_TOKEN", "value": UNKNOWN},
        {"name": "PWD", "value": "/app"},
    ]
    args = ["--password=$(DB_PASSWORD)", "password=$(DB_PASSWORD)", "--cookie-secure=true", "--client-id=langflow",
            "--client-secret-file=/etc/secret"]
    assert check("no-literal-credentials", DEPLOYMENT, deployment(pod_spec(container(env=env, args=args)))) == []


# --- langflow-authentication ------------------------------------------------------------------------------

def langflow(auto_login: Any = "true", *, namespace: str = "langflow") -> dict[str, Any]:
    c = container("langflow", "langflowai/langflow:1.6.4",
                  env=[{"name": "LANGFLOW_AUTO_LOGIN", "value": auto_login}] if auto_login is not None else [])
    return deployment(pod_spec(c), name="langflow", namespace=namespace,
                      pod_labels={"app.kubernetes.io/name": "langflow", "app.kubernetes.io/instance": "langflow",
                                  "app.kubernetes.io/version": "1.6.4"})


def service(name: str, selector: dict[str, str], service_type: str = "ClusterIP",
            namespace: str = "langflow") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"type": service_type, "selector": selector, "ports": [{"port": 7860}]}}


LANGFLOW_SERVICE = service("langflow", {"app.kubernetes.io/name": "langflow", "app.kubernetes.io/instance": "langflow"})


def oauth2_proxy(upstream: str = "http://langflow.langflow.svc:7860/", namespace: str = "langflow") -> dict[str, Any]:
    c = container("oauth2-proxy", "quay.io/oauth2-proxy/oauth2-proxy:v7.15.6",
                  args=["--provider=oidc", f"--upstream={upstream}"])
    return deployment(pod_spec(c), name="langflow-oauth2-proxy", namespace=namespace,
                      labels={"app.kubernetes.io/name": "oauth2-proxy"},
                      pod_labels={"app.kubernetes.io/name": "oauth2-proxy"})


def front_ingress(service_name: str) -> dict[str, Any]:
    return ingress([rule("langflow.example.com", service_name)], [{"hosts": ["langflow.example.com"]}],
                   name="langflow", namespace="langflow")


def test_authentication_refuses_langflow_without_login_and_without_oauth2_proxy():
    reported = check_stack("langflow-authentication", [(DEPLOYMENT, langflow()), (SERVICE, LANGFLOW_SERVICE)])
    assert reported == [(
        "Deployment langflow/langflow runs Langflow with its login off (spec.template.spec.containers[].env "
        "LANGFLOW_AUTO_LOGIN is not \"false\") in production stack 'prod', and no oauth2-proxy is in front of it: "
        "deploy oauth2-proxy (a Deployment labelled app.kubernetes.io/name: oauth2-proxy) with "
        "--upstream=http://langflow.langflow.svc:<port>/ (this program: sso.enabled: true), or turn Langflow's login "
        "on (env LANGFLOW_AUTO_LOGIN=false; this program: auth.enabled: true).",
        "urn:pulumi:prod::langflow::kubernetes:apps/v1:Deployment::langflow")]
    # Langflow's own default is login off: no LANGFLOW_AUTO_LOGIN at all is the same.
    assert len(check_stack("langflow-authentication", [(DEPLOYMENT, langflow(None)), (SERVICE, LANGFLOW_SERVICE)])) == 1


def test_authentication_refuses_routes_around_oauth2_proxy():
    public = service("langflow", LANGFLOW_SERVICE["spec"]["selector"], "LoadBalancer")
    reported = check_stack("langflow-authentication", [
        (DEPLOYMENT, langflow()), (SERVICE, public), (DEPLOYMENT, oauth2_proxy()), (INGRESS, front_ingress("langflow"))])
    assert reported == [
        ("Service langflow/langflow: spec.type is LoadBalancer, which exposes Langflow (Deployment langflow/langflow, "
         "login off) outside the cluster without authentication: set spec.type: ClusterIP and let people in through "
         "oauth2-proxy, or turn Langflow's login on (env LANGFLOW_AUTO_LOGIN=false; this program: auth.enabled: "
         "true).", "urn:pulumi:prod::langflow::kubernetes:core/v1:Service::langflow"),
        ("Ingress langflow/langflow: spec.rules[0].http.paths[0].backend.service.name routes straight to Langflow's "
         "Service langflow, whose login is off (Deployment langflow/langflow): route it to oauth2-proxy's Service "
         "instead, or turn Langflow's login on (env LANGFLOW_AUTO_LOGIN=false; this program: auth.enabled: true).",
         "urn:pulumi:prod::langflow::kubernetes:networking.k8s.io/v1:Ingress::langflow"),
    ]


@pytest.mark.parametrize("upstream", ["http://langflow.langflow.svc:7860/", "http://langflow:7860",
                                      "http://langflow.langflow:7860", "http://langflow.langflow.svc.cluster.local/"])
def test_authentication_accepts_oauth2_proxy_in_front(upstream):
    proxy_service = service("langflow-oauth2-proxy", {"app.kubernetes.io/name": "oauth2-proxy"})
    assert check_stack("langflow-authentication", [
        (DEPLOYMENT, langflow()), (SERVICE, LANGFLOW_SERVICE), (DEPLOYMENT, oauth2_proxy(upstream)),
        (SERVICE, proxy_service), (INGRESS, front_ingress("langflow-oauth2-proxy"))]) == []


def test_authentication_refuses_an_oauth2_proxy_in_front_of_something_else():
    elsewhere = [oauth2_proxy("http://other.langflow.svc:7860/"), oauth2_proxy("http://langflow:7860", "edge")]
    for proxy in elsewhere:
        reported = check_stack("langflow-authentication", [
            (DEPLOYMENT, langflow()), (SERVICE, LANGFLOW_SERVICE), (DEPLOYMENT, proxy)])
        assert [m for m, _ in reported if "no oauth2-proxy is in front of it" in m], proxy


def test_authentication_accepts_langflow_with_its_login_on():
    assert check_stack("langflow-authentication", [
        (DEPLOYMENT, langflow("false")), (SERVICE, LANGFLOW_SERVICE), (INGRESS, front_ingress("langflow"))]) == []
    assert check_stack("langflow-authentication", [(DEPLOYMENT, langflow(UNKNOWN)), (SERVICE, LANGFLOW_SERVICE)]) == []


def test_authentication_never_reports_on_unknown_values():
    unknown_pod = langflow()
    unknown_pod["spec"]["template"]["spec"] = UNKNOWN
    unknown_selector = service("langflow", {})
    unknown_selector["spec"]["selector"] = UNKNOWN
    unknown_proxy = oauth2_proxy()
    unknown_proxy["spec"]["template"]["spec"]["containers"][0]["args"] = UNKNOWN
    for resources in ([(DEPLOYMENT, unknown_pod), (SERVICE, LANGFLOW_SERVICE)],
                      [(DEPLOYMENT, langflow()), (SERVICE, unknown_selector)],
                      [(DEPLOYMENT, langflow()), (SERVICE, LANGFLOW_SERVICE), (DEPLOYMENT, unknown_proxy)]):
        assert check_stack("langflow-authentication", resources) == [], resources


def test_authentication_applies_to_production_stacks_only():
    resources = [(DEPLOYMENT, langflow()), (SERVICE, LANGFLOW_SERVICE)]
    assert check_stack("langflow-authentication", resources, stack="dev") == []
    assert len(check_stack("langflow-authentication", resources, stack="staging",
                           config={"production_stacks": ["staging", "prod"]})) == 1
    assert check_stack("langflow-authentication", resources, stack="prod",
                       config={"production_stacks": ["staging"]}) == []


# --- pod-disruption-budgets (advisory) --------------------------------------------------------------------

def pdb(selector: Any, namespace: str = "apps") -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": namespace}, "spec": {"minAvailable": 1, "selector": selector}}


def test_disruption_budgets_wants_one_for_several_replicas():
    reported = check_stack("pod-disruption-budgets", [(DEPLOYMENT, deployment(replicas=2)),
                                                      (PDB, pdb({"matchLabels": {"app.kubernetes.io/name": "web"}},
                                                                "other"))])
    assert reported == [(
        "Deployment apps/web runs 2 replicas (spec.replicas) and no PodDisruptionBudget in its namespace selects its "
        "pods (spec.template.metadata.labels {app.kubernetes.io/name: web}): add a PodDisruptionBudget with "
        "minAvailable: 1 (or maxUnavailable: 1) and a selector matching those labels, so that a node drain keeps some "
        "serving.", "urn:pulumi:prod::langflow::kubernetes:apps/v1:Deployment::web")]


def test_disruption_budgets_without_a_selector_select_nothing():
    budget = pdb(None)
    del budget["spec"]["selector"]  # policy/v1: a null selector selects no pod (an empty one, every pod)
    assert len(check_stack("pod-disruption-budgets", [(DEPLOYMENT, deployment(replicas=2)), (PDB, budget)])) == 1
    assert check_stack("pod-disruption-budgets", [(DEPLOYMENT, deployment(replicas=2)), (PDB, pdb({}))]) == []


def test_disruption_budgets_accepts_a_matching_budget_and_single_replicas():
    assert check_stack("pod-disruption-budgets", [
        (DEPLOYMENT, deployment(replicas=3)),
        (PDB, pdb({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["web"]}]}))]) == []
    assert check_stack("pod-disruption-budgets", [(DEPLOYMENT, deployment(replicas=1))]) == []
    assert check_stack("pod-disruption-budgets", [(STATEFULSET, {**deployment(), "spec": {
        **deployment()["spec"], "replicas": UNKNOWN}})]) == []


# --- network-policies (advisory) --------------------------------------------------------------------------

def network_policy(pod_selector: Any, namespace: str = "apps") -> dict[str, Any]:
    return {"metadata": {"name": "deny", "namespace": namespace},
            "spec": {"podSelector": pod_selector, "policyTypes": ["Ingress"]}}


def test_network_policies_wants_every_workload_selected():
    reported = check_stack("network-policies", [
        (DEPLOYMENT, deployment()), (NETWORK_POLICY, network_policy({"matchLabels": {"app.kubernetes.io/name": "db"}})),
        (NETWORK_POLICY, network_policy({}, "other"))])
    assert reported == [(
        "Deployment apps/web: no NetworkPolicy in apps selects its pods (labels {app.kubernetes.io/name: web}), so "
        "they accept traffic from anywhere: add a NetworkPolicy whose spec.podSelector matches them (a default-deny "
        "policy with podSelector: {} covers every pod of the namespace), then allow what they need.",
        "urn:pulumi:prod::langflow::kubernetes:apps/v1:Deployment::web")]


def test_network_policies_accepts_a_selecting_policy():
    cron = (CRONJOB, {**cron_job(pod_spec()), "metadata": {"name": "nightly", "namespace": "apps"}})
    assert check_stack("network-policies", [(DEPLOYMENT, deployment()), cron, (NETWORK_POLICY, network_policy({}))]) == []
    selected = network_policy({"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "Exists"}]})
    assert check_stack("network-policies", [(DEPLOYMENT, deployment()), (NETWORK_POLICY, selected)]) == []


LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(("selector", "expected"), [
    ({}, True),
    ({"matchLabels": {"app": "web"}}, True),
    ({"matchLabels": {"app": "web", "tier": "back"}}, False),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}, False),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]}, True),
    ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
    ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
    ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
    ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]},
     False),
    ({"matchLabels": {"app": rules.UNKNOWN}}, None),
    (rules.UNKNOWN, None),
])
def test_label_selectors_follow_kubernetes_semantics(selector, expected):
    assert rules.selector_matches(selector, LABELS) is expected


# --- the real stacks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stacks_pass_every_mandatory_policy(stack):
    """What the program registers for dev and prod (under mocks, so every value is known) breaks no mandatory
    policy. The real engine's preview runs in tests/integration/test_policy_real.py."""
    run = run_program(stack_values(stack), stack=stack)
    assert run.error is None, run.error
    kubernetes = [(r.type, json_safe(r.inputs), r.name) for r in run.resources if r.type.startswith("kubernetes:")]
    assert kubernetes
    for name in MANDATORY[:-1]:
        for resource_type, props, resource_name in kubernetes:
            assert check(name, resource_type, props, resource_name) == [], (name, resource_name)
    assert check_stack("langflow-authentication", [(t, p) for t, p, _ in kubernetes], stack=stack) == []


def test_prod_without_any_sign_in_breaks_the_authentication_policy():
    values = copy.deepcopy(stack_values("prod"))
    values.update(auth={"enabled": False}, sso={"enabled": False}, ingress={"enabled": False})
    run = run_program(values, stack="prod")
    assert run.error is None, run.error
    resources = [(r.type, json_safe(r.inputs)) for r in run.resources if r.type.startswith("kubernetes:")]
    (reported,) = check_stack("langflow-authentication", resources)
    assert reported[0].startswith("Deployment langflow/langflow runs Langflow with its login off")


def json_safe(value: Any) -> Any:
    """Mock inputs as plain JSON (what a Struct holds)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
