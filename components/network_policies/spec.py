"""The stack's NetworkPolicies, as plain data: who may reach each pod, and where each pod may connect.

A default deny isolates every pod of the stack (those labelled part-of langflow); each workload then
gets one policy that allows exactly what it needs. Pods are named by the labels that select them
(the other components' selector functions), so a test can check each selector against the rendered
pods. Egress rules are left out entirely when `egress.restricted` is off.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from components import langflow_spec
from components.backups import spec as backups_spec
from components.common import object_metadata
from components.database import spec as database_spec
from components.edge import spec as edge_spec
from components.ambassador import spec as ambassador_spec
from components.flow_sync import spec as flow_sync_spec
from settings.backups import backup_engine
from settings.model import LangflowStackConfig
from settings.ambassador import AMBASSADOR_PORT
from settings.network import (
    EgressDestination, NetworkPoliciesConfig, database_destination, kubernetes_api_destination,
    oidc_issuer_destination, within,
)

PART_OF = {"app.kubernetes.io/part-of": "langflow"}
DNS_PORT = 53
CNPG_STATUS_PORT = 8000  # the CloudNativePG instance manager's port, which the operator polls


@dataclass(frozen=True)
class Pods:
    """Pods of the stack in its namespace: the labels that select them, and the port they serve on."""

    selector: dict[str, str]
    port: Optional[int] = None


@dataclass(frozen=True)
class DatabasePeer:
    """Where the database is: pods in the namespace, or addresses outside it."""

    pods: Optional[Pods] = None
    address: Optional[EgressDestination] = None
    # CloudNativePG: its operator polls the pods, and the pods replicate among themselves.
    operator: bool = False


@dataclass(frozen=True)
class StackPods:
    """Every workload of the stack that a NetworkPolicy names."""

    langflow: Pods
    # In-namespace pods that call Langflow (oauth2-proxy, the flow sync Job; the ambassador later).
    langflow_clients: tuple[Pods, ...] = ()
    flow_sync: Optional[Pods] = None  # the Job that applies flows through Langflow's API
    oauth2_proxy: Optional[Pods] = None
    session_store: Optional[Pods] = None  # oauth2-proxy's Redis: only oauth2-proxy reaches it
    oidc_issuer: Optional[EgressDestination] = None  # where oauth2-proxy signs people in
    langflow_to_issuer: bool = False  # Langflow fetches the issuer's keys (per-user SSO identity)
    # The ingress controller sends traffic to oauth2-proxy (with SSO: every path), else to Langflow.
    ingress_to_langflow: bool = False
    ingress_to_oauth2_proxy: bool = False
    database: Optional[DatabasePeer] = None
    # Jobs whose only connection is the database (Langflow's start-up Job, the bootstrap, PostgreSQL backups).
    database_jobs: dict[str, Pods] = field(default_factory=dict)
    # The shared ambassador (its client port), and the namespaces that call it.
    ambassador: Optional[Pods] = None
    ambassador_client_namespaces: tuple[str, ...] = ()
    # Namespaces whose pods run the ambassador as a sidecar: the sidecar calls Langflow itself.
    sidecar_namespaces: tuple[str, ...] = ()
    # The Job that makes the ambassador's API key (Langflow before 1.7): Langflow, then the Kubernetes API.
    ambassador_key_job: Optional[Pods] = None
    # Metrics ports, by the pods that serve them, and the namespaces (Prometheus) that scrape them.
    langflow_metrics_port: Optional[int] = None
    ambassador_admin_port: Optional[int] = None
    scrape_namespaces: tuple[str, ...] = ()


def database_peer(config: LangflowStackConfig) -> Optional[DatabasePeer]:
    """The database as a NetworkPolicy sees it: the server's pods in the namespace, or addresses outside."""
    database, app = config.database, config.name
    if database.type == "sqlite":
        return None
    mode = database.postgresql.mode if database.type == "postgresql" else None
    if mode == "in-cluster":
        return DatabasePeer(pods=Pods(database_spec.selector_labels(app), database_spec.PORT))
    if mode == "cloudnative-pg":
        return DatabasePeer(pods=Pods({"cnpg.io/cluster": database_spec.server_name(app)}, database_spec.PORT),
                            operator=True)
    return DatabasePeer(address=database_destination(config.network_policies, database))


def stack_pods(config: LangflowStackConfig) -> StackPods:
    """The workloads the stack's config gives rise to, by the selector labels their components render."""
    app, sso, ingress = config.name, config.sso, config.ingress
    oauth2_proxy = Pods(edge_spec.selector_labels(app), edge_spec.OAUTH2_PROXY_PORT) if sso.enabled else None
    session_store = (Pods(edge_spec.redis_selector_labels(app), edge_spec.REDIS_PORT)
                     if sso.enabled and sso.oauth2_proxy.session_store == "redis" else None)
    jobs: dict[str, Pods] = {}
    if langflow_spec.init_job_needed(config):
        jobs["init"] = Pods(langflow_spec.init_selector_labels(config))
    database = config.database
    if database.type == "postgresql" and database_spec.bootstrap_needed(database.postgresql):
        jobs["database-bootstrap"] = Pods(database_spec.bootstrap_selector_labels(app))
    if backup_engine(config.backups, database) == "postgresql":
        jobs["backups"] = Pods(backups_spec.pod_selector_labels(app))
    flow_sync = Pods(flow_sync_spec.selector_labels(config)) if langflow_spec.flows_synced(config) else None
    ambassador_config, metrics = config.ambassador, config.metrics
    ambassador = key_job = None
    if ambassador_config.enabled:
        ambassador = Pods(ambassador_spec.selector_labels(app), AMBASSADOR_PORT)
        if not langflow_spec.ambassador_key_from_env(config):
            key_job = Pods(ambassador_spec.key_job_selector_labels(app))
    return StackPods(
        langflow=Pods(langflow_spec.selector_labels(config), langflow_spec.CONTAINER_PORT),
        langflow_clients=tuple(p for p in (oauth2_proxy, flow_sync, ambassador, key_job) if p),
        ambassador=ambassador,
        ambassador_client_namespaces=tuple(ambassador_config.client_namespaces) if ambassador else (),
        sidecar_namespaces=tuple(ambassador_config.sidecar_namespaces) if ambassador else (),
        ambassador_key_job=key_job,
        langflow_metrics_port=metrics.langflow_port if metrics.enabled else None,
        ambassador_admin_port=ambassador_config.admin_port if ambassador else None,
        scrape_namespaces=tuple(metrics.scrape_namespaces) if metrics.enabled else (),
        flow_sync=flow_sync,
        oauth2_proxy=oauth2_proxy,
        session_store=session_store,
        oidc_issuer=oidc_issuer_destination(config.network_policies, sso) if sso.enabled else None,
        langflow_to_issuer=langflow_spec.sso_per_user(config),
        # With SSO on, every path (the API paths too) goes through oauth2-proxy.
        ingress_to_langflow=ingress.enabled and not sso.enabled,
        ingress_to_oauth2_proxy=ingress.enabled and sso.enabled,
        database=database_peer(config),
        database_jobs=jobs,
    )


def _namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _pods(pods: Pods) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": dict(pods.selector)}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _to(destination: EgressDestination) -> dict[str, Any]:
    peers: list[dict[str, Any]] = []
    for cidr in destination.cidrs:
        block: dict[str, Any] = {"cidr": cidr}
        inside = [e for e in destination.excluded_cidrs if within(e, cidr)]
        if inside:
            block["except"] = inside
        peers.append({"ipBlock": block})
    peers += [_namespace(name) for name in destination.namespaces]
    return {"to": peers, "ports": _tcp(*destination.ports)}


def _dns(config: NetworkPoliciesConfig) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": protocol, "port": DNS_PORT} for protocol in ("UDP", "TCP")]}
    if config.egress.dns_namespace:
        rule["to"] = [_namespace(config.egress.dns_namespace)]
    return rule


def _database_egress(peer: Optional[DatabasePeer]) -> list[dict[str, Any]]:
    if peer is None:
        return []
    if peer.pods is not None:
        return [{"to": [_pods(peer.pods)], "ports": _tcp(peer.pods.port)}]
    return [_to(peer.address)] if peer.address is not None else []


def _policy(name: str, namespace: str, labels: dict[str, str], annotations: dict[str, str],
            selector: dict[str, Any], ingress: Optional[list[dict[str, Any]]],
            egress: Optional[list[dict[str, Any]]]) -> dict[str, Any]:
    """`ingress`/`egress` None: that direction is not restricted by this policy; []: nothing is allowed."""
    spec: dict[str, Any] = {"podSelector": selector, "policyTypes": []}
    for kind, rules in (("Ingress", ingress), ("Egress", egress)):
        if rules is not None:
            spec["policyTypes"].append(kind)
            spec[kind.lower()] = rules
    return {"metadata": object_metadata(namespace, labels, annotations, name), "spec": spec}


def _scrape(pods: StackPods, port: Optional[int]) -> list[dict[str, Any]]:
    """Prometheus, from its namespaces, on a metrics port."""
    if port is None or not pods.scrape_namespaces:
        return []
    return [{"from": [_namespace(name) for name in pods.scrape_namespaces], "ports": _tcp(port)}]


def network_policy_manifests(config: NetworkPoliciesConfig, pods: StackPods, *, app: str, namespace: str,
                             labels: dict[str, str], annotations: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every NetworkPolicy of the stack, by name."""
    restricted = config.egress.restricted
    dns = _dns(config)
    policies: dict[str, dict[str, Any]] = {}

    def add(name: str, selector: dict[str, Any], ingress: Optional[list[dict[str, Any]]],
            egress: Optional[list[dict[str, Any]]]) -> None:
        policies[name] = _policy(name, namespace, labels, annotations, selector, ingress,
                                 egress if restricted else None)

    # Every pod of the stack, whatever it is: nothing in, nothing out, unless a policy below allows it.
    add(f"{app}-default-deny", {"matchLabels": dict(PART_OF)}, [], [])

    controller = [_namespace(config.ingress_controller_namespace)]
    langflow_from = [_pods(client) for client in pods.langflow_clients]
    langflow_from += controller if pods.ingress_to_langflow else []
    langflow_from += [_namespace(name) for name in (*config.api_client_namespaces, *pods.sidecar_namespaces)]
    langflow_ingress = [{"from": langflow_from, "ports": _tcp(pods.langflow.port)}] if langflow_from else []
    langflow_ingress += _scrape(pods, pods.langflow_metrics_port)
    langflow_egress = [dns, *_database_egress(pods.database), *map(_to, config.egress.llm_apis)]
    if pods.langflow_to_issuer and pods.oidc_issuer is not None:
        langflow_egress.append(_to(pods.oidc_issuer))
    add(f"{app}-langflow", _pods(pods.langflow)["podSelector"], langflow_ingress, langflow_egress)

    to_langflow = {"to": [_pods(pods.langflow)], "ports": _tcp(pods.langflow.port)}
    if pods.ambassador is not None:
        callers = [_namespace(name) for name in pods.ambassador_client_namespaces]
        ambassador_ingress = [{"from": callers, "ports": _tcp(pods.ambassador.port)}] if callers else []
        add(f"{app}-ambassador", _pods(pods.ambassador)["podSelector"],
            ambassador_ingress + _scrape(pods, pods.ambassador_admin_port), [dns, to_langflow])
    if pods.ambassador_key_job is not None:
        add(f"{app}-ambassador-key", _pods(pods.ambassador_key_job)["podSelector"], [],
            [dns, to_langflow, _to(kubernetes_api_destination(config))])
    if pods.oauth2_proxy is not None:
        proxy_ingress = ([{"from": controller, "ports": _tcp(pods.oauth2_proxy.port)}]
                         if pods.ingress_to_oauth2_proxy else [])
        proxy_egress = [dns, to_langflow]
        if pods.oidc_issuer is not None:
            proxy_egress.append(_to(pods.oidc_issuer))
        if pods.session_store is not None:
            proxy_egress.append({"to": [_pods(pods.session_store)], "ports": _tcp(pods.session_store.port)})
        add(f"{app}-oauth2-proxy", _pods(pods.oauth2_proxy)["podSelector"], proxy_ingress, proxy_egress)
        if pods.session_store is not None:
            # oauth2-proxy's pods alone, on Redis' port; Redis connects nowhere.
            add(f"{app}-oauth2-proxy-redis", _pods(pods.session_store)["podSelector"],
                [{"from": [_pods(pods.oauth2_proxy)], "ports": _tcp(pods.session_store.port)}], [])

    if pods.flow_sync is not None:
        add(f"{app}-flow-sync", _pods(pods.flow_sync)["podSelector"], [], [dns, to_langflow])

    for name, job in pods.database_jobs.items():
        add(f"{app}-{name}", _pods(job)["podSelector"], [], [dns, *_database_egress(pods.database)])

    server = pods.database.pods if pods.database else None
    if server is not None:
        clients = [_pods(pods.langflow), *(_pods(job) for job in pods.database_jobs.values())]
        server_ingress = [{"from": clients, "ports": _tcp(server.port)}]
        if pods.database.operator:
            server_ingress += [{"from": [_namespace(config.cloudnative_pg_operator_namespace)],
                                "ports": _tcp(CNPG_STATUS_PORT)},
                               {"from": [_pods(server)], "ports": _tcp(server.port)}]
        # The in-cluster server connects nowhere; CloudNativePG's pods talk to the API server (an address
        # outside any namespace): their egress stays open.
        add(f"{app}-database", _pods(server)["podSelector"], server_ingress, None if pods.database.operator else [])
    return policies
