"""What the program accepts, Kubernetes accepts: a real API server judges every object.

Each object a stack registers (taken from the program run under mocks, so
exactly what `pulumi up` would send) is created with `?dryRun=All` on the
local cluster's kube-apiserver: its validation, defaulting and admission,
Pod Security "restricted" included, run in full and nothing is stored. The
same judge then checks a corpus of awkward but accepted inputs, each a member
of a class the validation guards: if the program accepts an input, the API
server must accept what it renders from it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from localcluster.kubeapi import ApiError
from settings.cron import schedule_problem
from settings.model import MAX_NAME_LENGTH
from tests.program import Registered, run_program, stack_values

pytestmark = pytest.mark.integration

# How the engine marks a secret value on the wire.
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def plain(value: Any) -> Any:
    """Wire values as the provider sends them: no secret wrappers, whole numbers as integers.

    (The engine's wire format carries every number as a double; the provider turns them back by schema.)
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def manifest(resource: Registered) -> dict[str, Any]:
    _, group_version, kind = resource.type.split(":")
    body = plain(copy.deepcopy(resource.inputs))
    body["apiVersion"], body["kind"] = group_version.removeprefix("core/"), kind
    body["metadata"] = {**body.get("metadata", {}), "name": resource.state["metadata"]["name"]}
    return body


PLURALS = {"Ingress": "ingresses", "NetworkPolicy": "networkpolicies", "PodDisruptionBudget": "poddisruptionbudgets",
           "RoleBinding": "rolebindings", "ServiceAccount": "serviceaccounts"}


def collection(obj: dict[str, Any]) -> str:
    api_version, kind = obj["apiVersion"], obj["kind"]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    plural = PLURALS.get(kind, kind.lower() + "s")
    if kind == "Namespace":
        return f"{base}/{plural}"
    return f"{base}/namespaces/{obj['metadata']['namespace']}/{plural}"


WORKLOADS = ("Deployment", "StatefulSet", "Job")
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"


def pod_from(workload: dict[str, Any]) -> dict[str, Any]:
    """The Pod a workload would create: Pod Security admission enforces on Pods only."""
    template = copy.deepcopy(workload["spec"]["template"])
    name = f"dry-run-{workload['kind'].lower()}-{workload['metadata']['name']}"[:63].rstrip("-")
    metadata = {**template.get("metadata", {}), "name": name, "namespace": workload["metadata"]["namespace"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def objects_of(values: dict[str, Any], stack: str) -> list[dict[str, Any]]:
    run = run_program(values, stack)
    assert run.error is None, run.error
    out = [manifest(r) for r in run.resources if r.type.startswith("kubernetes:") and r.type != CONFIG_GROUP]
    # A ConfigGroup holds objects as written (Dex's OAuth2Client).
    out += [obj for r in run.of_type(CONFIG_GROUP) for obj in plain(r.inputs["objs"])]
    out += [pod_from(o) for o in out if o["kind"] in WORKLOADS]
    return out


def dry_run(client, objects: list[dict[str, Any]]) -> list[str]:
    """Create each object with dryRun=All; the API server's refusals, one line each."""
    refused = []
    # Namespaces first, then ServiceAccounts: the order of creation is the engine's (tests/test_stacks.py
    # checks it), and admission looks both up for real.
    real = ("Namespace", "ServiceAccount")
    for obj in sorted(objects, key=lambda o: real.index(o["kind"]) if o["kind"] in real else len(real)):
        if obj["kind"] in real:
            # Namespaced objects need it, a pod its ServiceAccount; create it (idempotent) as the program has it.
            client.ensure(collection(obj), obj)
            continue
        try:
            client.request("POST", collection(obj) + "?dryRun=All&fieldValidation=Strict", obj)
        except ApiError as error:
            refused.append(f"{obj['kind']} {obj['metadata'].get('name')}: HTTP {error.status}: {error}")
    return refused


@pytest.fixture(scope="module")
def api(local_cluster_module):
    return local_cluster_module().client()


BASE_KINDS = [
    "ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PersistentVolumeClaim", "Pod", "Secret", "Service"]


@pytest.mark.parametrize(("stack", "kinds"), [
    ("dev", sorted(BASE_KINDS + ["CronJob", "Job"])),
    # On PostgreSQL: the database StatefulSet, its bootstrap Job and Langflow's init Job; the edge: the
    # Ingress, oauth2-proxy's PodDisruptionBudget and Dex's OAuth2Client (in the platform's namespace); the
    # ambassador's key Job, with its ServiceAccount and the Role that may patch the key's Secret only.
    ("prod", sorted(BASE_KINDS + ["CronJob", "Ingress", "Job", "OAuth2Client", "PodDisruptionBudget", "Role",
                                  "RoleBinding", "ServiceAccount", "StatefulSet"])),
])
def test_every_object_of_the_stack_passes_a_server_side_dry_run(api, stack, kinds):
    objects = objects_of(stack_values(stack), stack)
    assert sorted({o["kind"] for o in objects}) == kinds
    assert dry_run(api, objects) == []


def test_the_judge_refuses_what_kubernetes_refuses(api):
    """The test can fail: a request above its limit, rendered anyway, is refused by the API server."""
    objects = objects_of(stack_values("dev"), "dev")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}
    refused = dry_run(api, [o for o in objects if o["kind"] in ("Namespace", "Deployment")])
    assert len(refused) == 1 and "must be less than or equal to memory limit" in refused[0], refused


# Awkward inputs the validation accepts, one or more per class it guards.
ACCEPTED = {
    "env in other cases": {"extra_env": [{"name": "langflow_max_items_length", "value": "100"},
                                         {"name": "lower_case_var", "value": ""}]},
    "env from every source": {"extra_env": [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s.x-1", "key": "a_b.c-d", "optional": True}}},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/name']"}}},
        {"name": "D", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIPs"}}},
        {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "F", "valueFrom": {"resourceFieldRef": {"containerName": "langflow", "resource": "limits.memory"}}}]},
    "unquoted and exotic quantities": {"resources": {
        "requests": {"cpu": 0.25, "memory": "1073741824", "ephemeral-storage": "1e9"},
        "limits": {"cpu": 2, "memory": "2.5Gi", "ephemeral-storage": "2G"}}},
    "requests equal to limits": {"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1000m", "memory": "2048Mi"}}},
    "storage as a number": {"storage": {"size": 1073741824}},
    "labels at the limits": {"labels": {"a" * 63: "b" * 63, "example.com/" + "c" * 63: "", "x.y/z_.-9": "A_.-z"},
                             "annotations": {"Example.COM/Note": "free text: anything goes\n", "n": ""}},
    "node selector": {"node_selector": {"kubernetes.io/os": "linux", "topology.kubernetes.io/zone": "eu-1a"}},
    "tolerations": {"tolerations": [
        {"operator": "Exists"}, {"key": "a", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "example.com/gpu", "value": "", "effect": "PreferNoSchedule"},
        {"key": "b", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 0}]},
    "affinity": {"affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]},
                                      {"key": "pool", "operator": "NotIn", "values": ["spot", ""]}]},
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "preference": {"matchExpressions": [{"key": "ssd", "operator": "DoesNotExist"}]}}]},
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "topologyKey": "kubernetes.io/hostname", "namespaces": ["langflow-dev", "other"],
                "labelSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["langflow"]}]},
                "matchLabelKeys": ["pod-template-hash"]}],
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": {
                "topologyKey": "zone", "namespaceSelector": {}}}]}}},
    "volumes of every allowed type": {
        "extra_volumes": [
            {"name": "s", "secret": {"secretName": "ca.certs", "defaultMode": 0o400, "optional": True,
                                     "items": [{"key": "ca.crt", "path": "sub/dir/ca.crt", "mode": 0o777}]}},
            {"name": "c", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a"}, {"key": "b", "path": "./b"}]}},
            {"name": "p", "persistentVolumeClaim": {"claimName": "shared", "readOnly": True}},
            {"name": "e", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "d", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "langflow", "resource": "limits.memory"}}]}},
            {"name": "j", "projected": {"defaultMode": 0o440, "sources": [
                {"secret": {"name": "s1", "items": [{"key": "k", "path": "one"}]}},
                {"configMap": {"name": "c1", "optional": True}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
                {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]}},
            {"name": "i", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                  "volumeAttributes": {"secretProviderClass": "llm"}}},
            {"name": "g", "ephemeral": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}}],
        "extra_volume_mounts": [
            {"name": "s", "mountPath": "/etc/ssl/custom/", "readOnly": True},
            {"name": "c", "mountPath": "/etc/langflow//config", "subPath": "a"},
            {"name": "p", "mountPath": "/mnt/shared", "readOnly": True, "recursiveReadOnly": "IfPossible"},
            {"name": "e", "mountPath": "/var/cache/x", "mountPropagation": "None"},
            {"name": "d", "mountPath": "/etc/podinfo"},
            {"name": "j", "mountPath": "/var/run/projected"},
            {"name": "i", "mountPath": "/mnt/secrets"},
            {"name": "g", "mountPath": "/scratch", "subPathExpr": "$(POD_NAME)"}]},
    "flows on a claim, mounted elsewhere": {"flows": {"source": "claim", "claim_name": "flows.v2", "mount_path": "/srv/./flows/"}},
    "no flows": {"flows": {"source": "none"}},
    "long valid tag and a digest": {"image": {"tag": "1.6.4-" + "a" * 100, "digest": "sha256:" + "0" * 64,
                                              "registry": "localhost:5000", "pull_secrets": ["regcred", "other.one"]}},
    "several replicas on a database": {"replicas": 3, "database": {"type": "url", "url_secret": {"name": "db", "key": "uri"}},
                                       "storage": {"access_mode": "ReadWriteMany"}, "runtime": {"workers": 4}},
    "service exposed with login": {"auth": {"enabled": True, "superuser": "root admin ü"},
                                   "service": {"type": "LoadBalancer", "port": 443,
                                               "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}}},
    "namespace at the length limit": {"namespace": "n" * 63, "name": "l" * MAX_NAME_LENGTH},
    "the longest name on PostgreSQL": {"name": "l" * MAX_NAME_LENGTH, "database": {
        "type": "postgresql", "postgresql": {"mode": "in-cluster"}}},
    "schedules with names, ranges, steps and ?": {"backups": {"schedule": "5/15 2 ? JAN-mar mon-FRI"}},
    "a schedule on 29 February": {"backups": {"schedule": "0 3 29 2 *"}},
    "a schedule macro": {"backups": {"schedule": "@weekly"}},
    "a schedule by interval": {"backups": {"schedule": "@every 6h30m"}},
    "IPv6 egress with a strict except": {"network_policies": {"egress": {"llm_apis": [
        {"cidrs": ["2001:db8::/32", "0.0.0.0/0"], "excluded_cidrs": ["2001:db8:1::/48", "10.0.0.0/8"]}]}}},
    "SSO with subdomain e-mail domains and API paths": {
        "auth": {"enabled": True}, "image": {"tag": "1.13.0"},
        "ingress": {"enabled": True, "hosts": [{"host": "langflow.example.com", "paths": [
            {"path": "/"}, {"path": "/oauth2", "path_type": "Prefix"}]}],
            "tls": {"mode": "secret", "secret_name": "langflow-tls"},
            "annotations": {"nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8"}},
        "sso": {"enabled": True, "issuer_url": "https://[2001:db8::1]:8443/dex", "client_id": "lang flow~1",
                "api_paths": ["/api/v1/run/", "/api/v1/webhook/"],
                "oauth2_proxy": {"email_domains": ["*.example.com", "example.org"]}}},
    # The key Job (Langflow 1.6) or the generated key (1.13), a sidecar's objects in a client's namespace.
    "ambassador on 1.6 with a sidecar": {"ambassador": {
        "enabled": True, "replicas": 3, "client_namespaces": ["pipelines"], "sidecar_namespaces": ["default"],
        "rate_limit_per_client": 5, "allowed_paths": ["/api/v1/run/", "/api/v2/workflow/"]}},
    # oauth2-proxy and Langflow with the platform's CA bundle mounted, Langflow checking Dex's tokens.
    "per-user SSO with a private CA": {
        "image": {"tag": "1.13.0"}, "auth": {"enabled": True}, "trusted_ca": {"secret": "platform-ca", "key": "ca-bundle.pem"},
        "ingress": {"enabled": True, "hosts": [{"host": "langflow.example.com"}],
                    "tls": {"mode": "secret", "secret_name": "langflow-tls"}},
        "sso": {"enabled": True, "issuer_url": "https://platform.example.com/dex",
                "identity": {"access": {"claim": "email", "levels": {"ops@example.com": "admin"}}}}},
    "ambassador on 1.13, metrics on their own ports": {
        "image": {"tag": "1.13.0"}, "metrics": {"langflow_port": 9464},
        "ambassador": {"enabled": True, "replicas": 1, "sidecar_namespaces": ["default"], "admin_port": 9901}},
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_what_the_program_accepts_the_api_server_accepts(api, case):
    values = {**stack_values("dev"), **ACCEPTED[case]}
    assert dry_run(api, objects_of(values, "dev")) == []


# Schedules the program refuses: the API server's own cron parser refuses them too. The last two it accepts: they
# never fire, which only the program says.
REFUSED_SCHEDULES = ["0 3 * * 7", "61 3 * * *", "*/0 * * * *", "0 3 * * MON-", "1-2-3 * * * *", "0 3 * *",
                     "CRON_TZ=UTC 0 3 * * *", "@every 1x"]
NEVER_FIRING = ["0 3 31 2 *", "0 3 31 4,6,9,11 *"]


def test_what_the_program_refuses_in_a_schedule_the_api_server_refuses(api):
    objects = objects_of(stack_values("dev"), "dev")
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    backup = next(o for o in objects if o["kind"] == "CronJob" and not o["spec"].get("suspend"))

    def refused(schedule: str) -> bool:
        cron_job = copy.deepcopy(backup)
        cron_job["spec"]["schedule"] = schedule
        return bool(dry_run(api, [namespace, cron_job]))

    assert not refused(backup["spec"]["schedule"])
    for schedule in REFUSED_SCHEDULES:
        assert schedule_problem(schedule) and refused(schedule), schedule
    for schedule in NEVER_FIRING:
        assert "never fires" in schedule_problem(schedule) and not refused(schedule), schedule
