"""Config of the NetworkPolicies (`langflow:network_policies`): who may reach each pod, and where pods may connect.

On by default: Langflow answers only oauth2-proxy, the ingress controller's namespace and the namespaces
of declared API clients; PostgreSQL only Langflow and its Jobs; egress goes only to DNS, the database,
the OIDC issuer and the LLM APIs. NetworkPolicies match addresses, never host names: a destination
outside the cluster is an address range: one known only by name (the issuer, an external database)
is opened on its port at any address, and `network_warnings` says so in every preview.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from typing import Optional

from pydantic import Field, field_validator, model_validator

from settings import kube
from settings.base import StrictModel, all_problems, at, valid
from settings.syntax import cidr_problem, is_ip_literal
from settings.database import DatabaseConfig, ExternalConfig
from settings.edge import SSOConfig

# What the default LLM destination leaves out: the cluster's and the cloud's own addresses
# (pod and service ranges, node networks, the metadata service at 169.254.169.254).
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8")


def within(inner: str, outer: str) -> bool:
    """Whether address range `inner` lies inside `outer` and is smaller: Kubernetes takes an `except` range only
    as a strict subset of its `cidr`."""
    a, b = ipaddress.ip_network(inner), ipaddress.ip_network(outer)
    return a.version == b.version and a != b and a.subnet_of(b)


def _namespace_problem(value: str) -> Optional[str]:
    return kube.dns_label_problem(value, "namespace name")


def namespace_list(value: list[str]) -> list[str]:
    for index, namespace in enumerate(value):
        problem = _namespace_problem(namespace)
        if problem:
            raise at(f"[{index}]", problem)
    if len(set(value)) != len(value):
        raise ValueError("a namespace is listed twice; list each once")
    return value


class EgressDestination(StrictModel):
    """Somewhere pods may connect to: address ranges outside the cluster and/or namespaces inside it."""

    cidrs: list[str] = Field(default_factory=list, description="Address ranges (CIDR), e.g. `203.0.113.0/24`.")
    excluded_cidrs: list[str] = Field(
        default_factory=list, description="Ranges inside `cidrs` that stay closed (e.g. the cluster's own networks)."
    )
    namespaces: list[str] = Field(default_factory=list, description="Namespaces (all their pods), by name.")
    ports: list[int] = Field(default_factory=lambda: [443], description="TCP ports.")

    @field_validator("cidrs", "excluded_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for index, cidr in enumerate(value):
            problem = cidr_problem(cidr)
            if problem:
                raise at(f"[{index}]", problem)
        return value

    _namespaces = field_validator("namespaces")(classmethod(lambda cls, value: namespace_list(value)))

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for index, port in enumerate(value):
            if not 1 <= port <= 65535:
                raise at(f"[{index}]", f"{port} is not a TCP port; use 1 to 65535, e.g. 443")
        if not value:
            raise ValueError("at least one port is required, e.g. [443]")
        return value

    @model_validator(mode="after")
    def _somewhere(self) -> "EgressDestination":
        problems: list[tuple[str, str]] = []
        if not self.cidrs and not self.namespaces:
            problems.append(("cidrs", "a destination needs `cidrs` or `namespaces`, e.g. cidrs: [203.0.113.0/24]"))
        for index, excluded in enumerate(self.excluded_cidrs):
            if excluded in self.cidrs or any(ipaddress.ip_network(excluded) == ipaddress.ip_network(outer)
                                             for outer in self.cidrs):
                problems.append((f"excluded_cidrs[{index}]", f"{excluded} is in `cidrs` too: a range cannot be both "
                                 "opened and closed whole; remove it from one of them"))
            elif not any(within(excluded, outer) for outer in self.cidrs):
                problems.append((f"excluded_cidrs[{index}]", f"{excluded} lies in none of `cidrs`; only a part of a "
                                 "range in `cidrs` can be excluded (Kubernetes refuses anything else)"))
        all_problems(self, problems)
        return self


def anywhere(port: int) -> EgressDestination:
    """One port at any address: the fallback for a destination known only by name."""
    return EgressDestination(cidrs=["0.0.0.0/0", "::/0"], ports=[port])


def issuer_port(issuer_url: str) -> int:
    parts = urllib.parse.urlsplit(issuer_url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _external(database: DatabaseConfig) -> Optional[ExternalConfig]:
    # Set exactly with mode external (the database model refuses it with any other mode).
    return database.postgresql.external if database.type == "postgresql" else None


def database_port(database: DatabaseConfig) -> int:
    external = _external(database)
    return external.port if external else 5432


def oidc_issuer_destination(config: "NetworkPoliciesConfig", sso: SSOConfig) -> EgressDestination:
    """Where oauth2-proxy (and, per-user, Langflow) may reach the issuer: as configured, else its port at any
    address."""
    return config.egress.oidc_issuer or anywhere(issuer_port(sso.issuer_url))


KUBERNETES_API_PORTS = [443, 6443]  # the `kubernetes` Service's port, and the API servers' own (after DNAT)


def kubernetes_api_destination(config: "NetworkPoliciesConfig") -> EgressDestination:
    """Where the ambassador's key Job reaches the Kubernetes API: as configured, else its ports at any address."""
    return config.egress.kubernetes_api or EgressDestination(cidrs=["0.0.0.0/0", "::/0"], ports=KUBERNETES_API_PORTS)


def database_destination(config: "NetworkPoliciesConfig", database: DatabaseConfig) -> EgressDestination:
    """Where a database outside the cluster is: as configured, its IP address, else its port at any address."""
    if config.egress.database is not None:
        return config.egress.database
    external = _external(database)
    if external is not None and is_ip_literal(external.host):
        bits = 128 if ":" in external.host else 32
        return EgressDestination(cidrs=[f"{external.host}/{bits}"], ports=[external.port])
    return anywhere(database_port(database))


def network_warnings(config: "NetworkPoliciesConfig", sso: SSOConfig, database: DatabaseConfig,
                     kubernetes_api: bool = False) -> list[str]:
    """Restricted egress to a destination known only by name is open on its port to any address: say so.
    `kubernetes_api`: a pod of the stack calls the Kubernetes API (the ambassador's key Job)."""
    if not config.enabled or not config.egress.restricted:
        return []
    out = []
    addressable = "NetworkPolicies match addresses, not names"
    if sso.enabled and config.egress.oidc_issuer is None:
        out.append(f"network_policies.egress.oidc_issuer is unset: oauth2-proxy (and Langflow, per-user) may connect "
                   f"to port {issuer_port(sso.issuer_url)} at any address to reach {sso.issuer_url} ({addressable}). Give the "
                   "issuer's address range (cidrs), or the namespace that serves it (namespaces: [ingress-nginx]).")
    outside = database.type == "url" or _external(database) is not None
    if outside and database_destination(config, database) == anywhere(database_port(database)):
        out.append(f"network_policies.egress.database is unset: Langflow may connect to port "
                   f"{database_port(database)} at any address to reach its database ({addressable}). Give the "
                   "server's address range, e.g. cidrs: [10.20.0.0/24] with ports: [5432].")
    if kubernetes_api and config.egress.kubernetes_api is None:
        out.append("network_policies.egress.kubernetes_api is unset: the ambassador's key Job may connect to ports "
                   "443 and 6443 at any address to reach the Kubernetes API. Give the API servers' addresses, e.g. "
                   "cidrs: [10.0.0.10/32] with ports: [6443] (kubectl get endpoints kubernetes).")
    return out


def public_https() -> list[EgressDestination]:
    return [EgressDestination(cidrs=["0.0.0.0/0"], excluded_cidrs=list(PRIVATE_RANGES), ports=[443])]


class EgressConfig(StrictModel):
    restricted: bool = Field(
        True,
        description="Limit where the stack's pods connect to: DNS, the database, the OIDC issuer and `llm_apis`. "
        "`false` is the explicit opt-out: pods may connect anywhere (who may reach them stays limited).",
    )
    dns_namespace: Optional[str] = Field(
        "kube-system",
        description="Namespace of the cluster DNS (port 53, UDP and TCP). Null: port 53 anywhere, for clusters "
        "with a node-local DNS cache on a link-local address.",
    )
    oidc_issuer: Optional[EgressDestination] = Field(
        None,
        description="Where oauth2-proxy (and Langflow, for Dex's keys, with `sso.identity.mode: per-user`) reaches "
        "the OIDC issuer (Dex), with `sso` on: its `cidrs`, or "
        "`namespaces: [ingress-nginx]` when the issuer's address is the platform's own ingress. Unset: the issuer's "
        "port at any address, with a warning in every preview (NetworkPolicies match addresses, never host names).",
    )
    database: Optional[EgressDestination] = Field(
        None,
        description="Where a database outside the cluster is (mode `external`, or `database.type: url`). Unset: an "
        "IP address host is used as it is; a host name (or a URL Secret, port 5432) opens its port at any address, "
        "with a warning in every preview. In-cluster and CloudNativePG servers need nothing here.",
    )
    kubernetes_api: Optional[EgressDestination] = Field(
        None,
        description="Where the Kubernetes API servers are, for the one pod that calls them: the ambassador's key Job "
        "(Langflow before 1.7). Unset: ports 443 and 6443 at any address, with a warning in every preview.",
    )
    llm_apis: list[EgressDestination] = Field(
        default_factory=public_https,
        description="Where Langflow's flows may call LLM and other APIs. Default: HTTPS to public addresses only "
        "(the private, link-local and loopback ranges, and with them the cloud metadata service, stay closed). "
        "`[]`: none.",
    )

    @field_validator("dns_namespace")
    @classmethod
    def _dns_namespace(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else valid(value, _namespace_problem(value))


class NetworkPoliciesConfig(StrictModel):
    enabled: bool = Field(
        True,
        description="NetworkPolicies for every pod of the stack (a default deny, then what each pod needs). They "
        "take effect only where the cluster's network plugin enforces them.",
    )
    ingress_controller_namespace: str = Field(
        "ingress-nginx",
        description="The ingress controller's namespace: with `ingress` on, its pods reach Langflow (or "
        "oauth2-proxy, with `sso` on).",
    )
    api_client_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose pods call Langflow's API directly (the in-cluster `base_url`).",
    )
    cloudnative_pg_operator_namespace: str = Field(
        "cnpg-system",
        description="The CloudNativePG operator's namespace (it reaches the database pods' status port, 8000).",
    )
    egress: EgressConfig = Field(default_factory=EgressConfig, description="Where the stack's pods may connect.")

    @field_validator("ingress_controller_namespace", "cloudnative_pg_operator_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return valid(value, _namespace_problem(value))

    _client_namespaces = field_validator("api_client_namespaces")(
        classmethod(lambda cls, value: namespace_list(value)))
