"""NetworkPolicies and PodDisruptionBudgets, checked against the pods the program renders.

Selectors are evaluated with Kubernetes' label-selector semantics (the policy pack's own function),
on the labels of the pod templates each stack registers: a policy that names pods by labels they
do not carry would isolate them from everything, and these tests would see it.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from policy.rules import selector_matches
from settings.loader import parse_config
from settings.validation import warnings
from tests.program import FakeCluster, run_program, stack_values
from tests.test_config import assert_refused

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE = "kubernetes:core/v1:Service"
# Where each kind keeps its pod template.
TEMPLATE_PATHS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template"),
}
CNPG_PODS = "cnpg.io/cluster"


def run(values: dict[str, Any], stack: str = "test"):
    # The external server's password Secret, as the program reads it from the cluster.
    result = run_program(values, stack, cluster=FakeCluster(secrets={"pg": {"password": "s3cret"}}))
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def dev():
    return run(stack_values("dev"), "dev")


@pytest.fixture(scope="module")
def prod():
    return run(stack_values("prod"), "prod")


def workloads(result) -> dict[str, dict[str, str]]:
    """Every pod template the stack registers: `<kind>/<name>` -> its labels."""
    pods = {}
    for typ, path in TEMPLATE_PATHS.items():
        for resource in result.of_type(typ):
            template = resource.inputs
            for step in path:
                template = template[step]
            pods[f"{typ.rsplit(':', 1)[1]}/{resource.name}"] = template["metadata"]["labels"]
    return pods


def policies(result) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs["spec"] for r in result.of_type(NETWORK_POLICY)}


def selected(selector: dict[str, Any], pods: dict[str, dict[str, str]]) -> set[str]:
    return {name for name, labels in pods.items() if selector_matches(selector, labels) is True}


def peers_from(rules: list[dict[str, Any]], key: str = "from") -> list[dict[str, Any]]:
    return [peer for rule in rules for peer in rule.get(key, [])]


def pod_peers(rules: list[dict[str, Any]], pods: dict[str, dict[str, str]], key: str = "from") -> set[str]:
    """The stack's pods a rule list lets in (or out to)."""
    return set().union(*(selected(p["podSelector"], pods) for p in peers_from(rules, key) if "podSelector" in p))


def on_port(rules: list[dict[str, Any]], port: int = 7860) -> list[dict[str, Any]]:
    """The rules that open `port` (default: Langflow's API port)."""
    return [rule for rule in rules if any(p["port"] == port for p in rule["ports"])]


def namespace_peers(rules: list[dict[str, Any]], key: str = "from") -> set[str]:
    """The namespaces (by name) a rule list names."""
    names = set()
    for peer in peers_from(rules, key):
        if "namespaceSelector" in peer:
            names.add(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    return names


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_workload_is_isolated_and_has_a_policy_of_its_own(stack, request):
    result = request.getfixturevalue(stack)
    pods, found = workloads(result), policies(result)
    assert pods, "no workloads rendered"
    deny = found.pop("langflow-default-deny")
    assert deny["policyTypes"] == ["Ingress", "Egress"] and deny["ingress"] == [] and deny["egress"] == []
    assert selected(deny["podSelector"], pods) == set(pods), "the default deny misses a pod"
    # Beyond the default deny, a pod that needs nothing from the network (SQLite's backup Jobs) has no policy.
    covered = set().union(*(selected(spec["podSelector"], pods) for spec in found.values()))
    quiet = {name for name in pods if pods[name]["app.kubernetes.io/name"] == "langflow-backups"} if stack == "dev" else set()
    assert covered == set(pods) - quiet
    for policy in found.values():
        assert selected(policy["podSelector"], pods), f"a policy selects no pod: {policy['podSelector']}"
    # Each pod has its own rules: no two workload policies select one pod.
    for name in pods:
        owners = [p for p, spec in found.items() if selector_matches(spec["podSelector"], pods[name]) is True]
        assert len(owners) <= 1, (name, owners)


def test_prod_langflow_is_reached_only_through_the_edge(prod):
    pods, found = workloads(prod), policies(prod)
    langflow = found["langflow-langflow"]
    assert selected(langflow["podSelector"], pods) == {"Deployment/langflow"}
    # oauth2-proxy, the ambassador, and the Jobs that apply the flows and make the ambassador's key.
    assert pod_peers(langflow["ingress"], pods) == {
        "Deployment/langflow-oauth2-proxy", "Job/langflow-flow-sync-job", "Deployment/langflow-ambassador",
        "Job/langflow-ambassador-key"}
    # Every path, the API paths too, goes through oauth2-proxy: no namespace reaches Langflow's API port, not
    # even the ingress controller's.
    assert namespace_peers(on_port(langflow["ingress"])) == set()
    # Prometheus, from its namespace, on the metrics port only.
    assert namespace_peers(on_port(langflow["ingress"], 9090)) == {"monitoring"}
    assert not pod_peers(on_port(langflow["ingress"], 9090), pods)
    assert {p["port"] for r in langflow["ingress"] for p in r["ports"]} == {7860, 9090}
    proxy = found["langflow-oauth2-proxy"]
    assert selected(proxy["podSelector"], pods) == {"Deployment/langflow-oauth2-proxy"}
    assert namespace_peers(proxy["ingress"]) == {"ingress-nginx"} and not pod_peers(proxy["ingress"], pods)
    assert {p["port"] for r in proxy["ingress"] for p in r["ports"]} == {4180}
    # oauth2-proxy connects to Langflow, its session store, DNS and the issuer (the platform's ingress, as prod
    # declares).
    assert pod_peers(proxy["egress"], pods, "to") == {"Deployment/langflow", "Deployment/langflow-oauth2-proxy-redis"}
    assert {p["port"] for r in proxy["egress"] if pod_peers([r], pods, "to") == {
        "Deployment/langflow-oauth2-proxy-redis"} for p in r["ports"]} == {6379}
    assert namespace_peers(proxy["egress"], "to") == {"kube-system", "ingress-nginx"}


def test_prod_session_store_answers_only_oauth2_proxy(prod):
    pods, found = workloads(prod), policies(prod)
    redis = found["langflow-oauth2-proxy-redis"]
    assert selected(redis["podSelector"], pods) == {"Deployment/langflow-oauth2-proxy-redis"}
    assert redis["policyTypes"] == ["Ingress", "Egress"]
    assert pod_peers(redis["ingress"], pods) == {"Deployment/langflow-oauth2-proxy"}
    assert not namespace_peers(redis["ingress"]) and not any("ipBlock" in p for p in peers_from(redis["ingress"]))
    assert {p["port"] for r in redis["ingress"] for p in r["ports"]} == {6379}
    assert redis["egress"] == []  # Redis connects nowhere


def test_the_cookie_session_store_has_no_redis_to_reach():
    values = stack_values("prod")
    values["sso"] = {**values["sso"], "oauth2_proxy": {"session_store": "cookie"}}
    result = run(values, "prod")
    found, pods = policies(result), workloads(result)
    assert "langflow-oauth2-proxy-redis" not in found and "Deployment/langflow-oauth2-proxy-redis" not in pods
    assert pod_peers(found["langflow-oauth2-proxy"]["egress"], pods, "to") == {"Deployment/langflow"}


def test_prod_database_answers_only_langflow_and_its_jobs(prod):
    pods, found = workloads(prod), policies(prod)
    database = found["langflow-database"]
    assert selected(database["podSelector"], pods) == {"StatefulSet/langflow-postgres"}
    clients = pod_peers(database["ingress"], pods)
    # Langflow, its start-up Job, the bootstrap, the snapshot and backup Jobs: every pod but the edge's and itself.
    assert clients == set(pods) - {"StatefulSet/langflow-postgres", "Deployment/langflow-oauth2-proxy",
                                   "Deployment/langflow-oauth2-proxy-redis", "Job/langflow-flow-sync-job",
                                   "Deployment/langflow-ambassador", "Job/langflow-ambassador-key"}
    assert {"Job/langflow-init", "Job/langflow-postgres-bootstrap", "CronJob/langflow-backups-scheduled"} <= clients
    assert {p["port"] for r in database["ingress"] for p in r["ports"]} == {5432}
    assert database["policyTypes"] == ["Ingress", "Egress"] and database["egress"] == []
    # Its Jobs reach the database and DNS, nothing else.
    for name in ("langflow-init", "langflow-database-bootstrap", "langflow-backups"):
        job = found[name]
        assert job["ingress"] == [] and pod_peers(job["egress"], pods, "to") == {"StatefulSet/langflow-postgres"}
        assert namespace_peers(job["egress"], "to") == {"kube-system"}


def test_the_bootstrap_pod_is_not_taken_for_the_server(prod):
    pods = workloads(prod)
    service = prod.named(SERVICE, "langflow-postgres-client").inputs["spec"]["selector"]
    served = {name for name, labels in pods.items() if all(labels.get(k) == v for k, v in service.items())}
    assert served == {"StatefulSet/langflow-postgres"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_langflow_egress_is_dns_the_database_and_public_https(stack, request):
    result = request.getfixturevalue(stack)
    pods, langflow = workloads(result), policies(result)["langflow-langflow"]
    rules = langflow["egress"]
    dns = [r for r in rules if {p["port"] for p in r["ports"]} == {53}]
    assert dns == [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]
    public = [r for r in rules if any("ipBlock" in p for p in r["to"])]
    (block,) = [p["ipBlock"] for r in public for p in r["to"]]
    assert block["cidr"] == "0.0.0.0/0" and {"10.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"} <= set(block["except"])
    assert public[0]["ports"] == [{"protocol": "TCP", "port": 443}]
    assert pod_peers(rules, pods, "to") == ({"StatefulSet/langflow-postgres"} if stack == "prod" else set())


def test_declared_api_client_namespaces_reach_langflow_and_nothing_else(dev):
    values = {**stack_values("dev"), "network_policies": {"api_client_namespaces": ["pipelines", "reports"]}}
    found = policies(run(values))
    assert namespace_peers(on_port(found["langflow-langflow"]["ingress"])) == {"pipelines", "reports"}
    # dev has no ingress and no SSO: no namespace is let in, and of its own pods only the flow sync Job.
    assert namespace_peers(on_port(policies(dev)["langflow-langflow"]["ingress"])) == set()
    assert pod_peers(policies(dev)["langflow-langflow"]["ingress"], workloads(dev)) == {"Job/langflow-flow-sync-job"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_flow_sync_job_reaches_langflow_and_dns_only(stack, request):
    result = request.getfixturevalue(stack)
    pods, sync = workloads(result), policies(result)["langflow-flow-sync"]
    assert selected(sync["podSelector"], pods) == {"Job/langflow-flow-sync-job"}
    assert sync["ingress"] == [] and pod_peers(sync["egress"], pods, "to") == {"Deployment/langflow"}
    assert {p["port"] for r in sync["egress"] if "to" in r and pod_peers([r], pods, "to") for p in r["ports"]} == {7860}
    assert namespace_peers(sync["egress"], "to") == {"kube-system"}


def test_with_flows_restarting_the_pods_there_is_no_flow_sync_job():
    values = {**stack_values("dev"), "flows": {**stack_values("dev")["flows"], "update": "restart"}}
    found = policies(run(values))
    assert "langflow-flow-sync" not in found and on_port(found["langflow-langflow"]["ingress"]) == []


@pytest.mark.parametrize("api_paths", [[], ["/api/v1/run/"]])
def test_with_sso_the_ingress_controller_never_reaches_langflow(api_paths):
    values = stack_values("prod")
    values["sso"] = {**values["sso"], "api_paths": api_paths}
    found = policies(run(values, "prod"))
    assert namespace_peers(on_port(found["langflow-langflow"]["ingress"])) == set()


def test_without_sso_the_ingress_controller_reaches_langflow():
    values = {**stack_values("dev"), "auth": {"enabled": True}, "ingress": {
        "enabled": True, "hosts": [{"host": "langflow.example.com"}], "tls": {"mode": "secret", "secret_name": "t"}}}
    found = policies(run(values, "dev"))
    assert namespace_peers(on_port(found["langflow-langflow"]["ingress"])) == {"ingress-nginx"}


def test_egress_opt_out_leaves_egress_open_and_ingress_closed():
    values = {**stack_values("prod"), "network_policies": {"egress": {"restricted": False}}}
    found = policies(run(values, "prod"))
    for name, spec in found.items():
        assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec, name
    assert namespace_peers(found["langflow-oauth2-proxy"]["ingress"]) == {"ingress-nginx"}
    assert namespace_peers(on_port(found["langflow-langflow"]["ingress"])) == set()


def test_network_policies_can_be_turned_off():
    result = run({**stack_values("dev"), "network_policies": {"enabled": False}}, "dev")
    assert result.of_type(NETWORK_POLICY) == []


def network_warnings(values: dict[str, Any]) -> list[str]:
    return [w for w in warnings(parse_config(values)) if w.startswith("network_policies")]


def external(host: str, egress: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "database": {"type": "postgresql", "postgresql": {"mode": "external", "external": {
            "host": host, "port": 6432, "password_secret": {"name": "pg", "key": "password"}}}},
        "backups": {"enabled": False},
    }
    if egress is not None:
        values["network_policies"] = {"egress": {"database": egress}}
    return values


def database_rule(values: dict[str, Any]) -> dict[str, Any]:
    egress = policies(run(values))["langflow-langflow"]["egress"]
    (rule,) = [r for r in egress if r["ports"][0]["port"] == 6432]
    return rule


def test_an_external_database_by_address_is_reached_there_only():
    assert database_rule(external("10.20.0.5")) == {"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}],
                                                     "ports": [{"protocol": "TCP", "port": 6432}]}
    assert not network_warnings(external("10.20.0.5"))
    declared = {"cidrs": ["10.20.0.0/24"], "ports": [6432]}
    assert database_rule(external("db.internal", declared))["to"] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    assert not network_warnings(external("db.internal", declared))


def test_an_external_database_by_name_is_open_on_its_port_and_says_so():
    rule = database_rule(external("db.internal"))
    assert rule["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
    (warning,) = network_warnings(external("db.internal"))
    assert warning.startswith("network_policies.egress.database is unset") and "port 6432 at any address" in warning


def test_sso_without_a_declared_issuer_is_open_on_the_issuer_port_and_says_so():
    values = stack_values("prod")
    values["network_policies"] = {"egress": {"kubernetes_api": values["network_policies"]["egress"]["kubernetes_api"]}}
    found = policies(run(values, "prod"))
    blocks = [p["ipBlock"]["cidr"] for r in found["langflow-oauth2-proxy"]["egress"] for p in r["to"] if "ipBlock" in p]
    assert blocks == ["0.0.0.0/0", "::/0"]
    (warning,) = network_warnings(values)
    assert warning.startswith("network_policies.egress.oidc_issuer is unset") and "port 443" in warning
    assert not network_warnings(stack_values("prod"))


def test_cloudnative_pg_pods_answer_langflow_their_operator_and_each_other():
    values = {"database": {"type": "postgresql", "postgresql": {"mode": "cloudnative-pg"}}}
    found = policies(run(values))
    database = found["langflow-database"]
    assert database["podSelector"] == {"matchLabels": {CNPG_PODS: "langflow-postgres"}}
    # Their egress stays open: the instance manager talks to the API server.
    assert database["policyTypes"] == ["Ingress"]
    assert namespace_peers(database["ingress"]) == {"cnpg-system"}
    assert {p["port"] for r in database["ingress"] for p in r["ports"]} == {5432, 8000}
    to_server = [peer for r in database["ingress"] if r["ports"][0]["port"] == 5432 for peer in r["from"]]
    langflow_pods = {"app.kubernetes.io/name": "langflow", "app.kubernetes.io/instance": "langflow"}
    assert any(selector_matches(p["podSelector"], langflow_pods) for p in to_server if "podSelector" in p)
    assert {"podSelector": {"matchLabels": {CNPG_PODS: "langflow-postgres"}}} in to_server


@pytest.mark.parametrize(("values", "key", "fragment"), [
    ({"network_policies": {"egress": {"llm_apis": [{"cidrs": ["10.0.0.1/8"]}]}}},
     "network_policies.egress.llm_apis[0].cidrs[0]", "write the range as 10.0.0.0/8"),
    ({"network_policies": {"egress": {"llm_apis": [{"cidrs": ["api.openai.com"]}]}}},
     "network_policies.egress.llm_apis[0].cidrs[0]", "not an address range"),
    ({"network_policies": {"egress": {"llm_apis": [{"cidrs": ["0.0.0.0/0"], "excluded_cidrs": ["::1/128"]}]}}},
     "network_policies.egress.llm_apis[0].excluded_cidrs[0]", "lies in none of `cidrs`"),
    ({"network_policies": {"egress": {"llm_apis": [{"ports": [443]}]}}},
     "network_policies.egress.llm_apis[0].cidrs", "needs `cidrs` or `namespaces`"),
    ({"network_policies": {"egress": {"oidc_issuer": {"cidrs": ["203.0.113.7/32"], "ports": [0]}}}},
     "network_policies.egress.oidc_issuer.ports[0]", "1 to 65535"),
    ({"network_policies": {"egress": {"database": {"namespaces": ["db"], "ports": []}}}},
     "network_policies.egress.database.ports", "at least one port"),
    ({"network_policies": {"api_client_namespaces": ["Pipelines"]}},
     "network_policies.api_client_namespaces[0]", "namespace name"),
    ({"network_policies": {"api_client_namespaces": ["a", "a"]}}, "network_policies.api_client_namespaces",
     "listed twice"),
    ({"network_policies": {"ingress_controller_namespace": ""}}, "network_policies.ingress_controller_namespace",
     "namespace name"),
    ({"network_policies": {"egress": {"dns_namespace": "kube_system"}}}, "network_policies.egress.dns_namespace",
     "namespace name"),
    ({"network_policies": {"egress": {"restricted": "sometimes"}}}, "network_policies.egress.restricted", ""),
    ({"network_policies": {"egres": {}}}, "network_policies.egres", ""),
])
def test_bad_network_policy_config_names_the_key(values, key, fragment):
    assert_refused(values, key, fragment)


def test_langflow_with_several_replicas_has_a_disruption_budget(prod, dev):
    pods = workloads(prod)
    budget = prod.named(PDB, "langflow").inputs["spec"]
    assert budget["maxUnavailable"] == 1 and selected(budget["selector"], pods) == {"Deployment/langflow"}
    assert all(r.name != "langflow" for r in dev.of_type(PDB))  # one replica: a budget would block every drain
