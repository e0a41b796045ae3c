"""Config of the ambassador (`langflow:ambassador`) and of metrics (`langflow:metrics`).

The ambassador is HAProxy in front of Langflow for API clients: it holds the Langflow API key (clients
never do), gives every request an id, times out, retries only what never reached Langflow, takes a
failing replica out, and answers a JSON 503 or 504 instead of hanging. Two shapes from one config: a
shared Deployment with a Service, and a sidecar that client teams add to their own pods. Rules across
sections (a client namespace of the ambassador is no longer a direct client of Langflow) live in
settings/validation.py.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from settings.syntax import host_name_problem
from settings.base import PinnedImage, Quantity, StrictModel, all_problems, at, valid, version_before, whole_version
from settings.managed import CONTAINER_PORT
from settings.network import namespace_list

# The release Debian 12 ships: the tests run the very HAProxy the pods run, from Debian's packages.
HAPROXY_DEFAULT_TAG = "2.6.12"
# A flow run may call slow LLMs for a long time: as long as the ingress and oauth2-proxy wait.
DEFAULT_RESPONSE_SECONDS = 3600
AMBASSADOR_PORT = 8080  # where HAProxy listens in its pod (unprivileged)
# The first Langflow with LANGFLOW_API_KEY_SOURCE=env (1.7.0, yanked; 1.7.1): the key is checked against
# LANGFLOW_API_KEY and maps to the superuser; database keys still work. Before it, only Langflow makes keys.
API_KEY_FROM_ENV_SINCE = (1, 7)
# Keys the ambassador's own model refuses (when not empty) while it is off; settings/validation.py says the others.
AMBASSADOR_OFF_KEYS = ("client_namespaces", "sidecar_namespaces", "rate_limit_per_client")


def key_from_env(langflow_tag: str) -> bool:
    """Whether this Langflow takes the ambassador's key from its environment (else a Job asks it for one)."""
    return not version_before(langflow_tag, API_KEY_FROM_ENV_SINCE)


class HAProxyImage(PinnedImage):
    repository: str = Field("docker.io/library/haproxy", description="Image repository (honours image.registry).")
    tag: str = Field(HAPROXY_DEFAULT_TAG, description="Pinned HAProxy version (X.Y.Z; the official image's tags).")

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        # HAProxy's official image is tagged by version; 2.2 or later has `http-error` and `retry-on`.
        if whole_version(value, HAPROXY_DEFAULT_TAG) < (2, 4):
            raise ValueError(f"HAProxy {value} is too old (the generated config needs 2.4 or later, for JSON error "
                             f"bodies and the Prometheus exporter); use e.g. {HAPROXY_DEFAULT_TAG}")
        return value


class AmbassadorTimeouts(StrictModel):
    connect_seconds: int = Field(
        5, ge=1, le=60,
        description="How long a connection to a Langflow pod may take. Past it (after the retries) the client gets "
        "the JSON 503.",
    )
    response_seconds: int = Field(
        DEFAULT_RESPONSE_SECONDS, ge=2, le=86400,
        description="How long Langflow may take to answer (a whole flow run, or the gap between two streamed "
        "events). Past it the client gets the JSON 504. Long flow runs need it long.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "AmbassadorTimeouts":
        if self.response_seconds <= self.connect_seconds:
            raise at("response_seconds", f"{self.response_seconds} s is not longer than connect_seconds "
                     f"({self.connect_seconds} s): every slow connection would time out as a slow answer; make it "
                     f"longer than a flow run takes, e.g. {DEFAULT_RESPONSE_SECONDS}")
        return self


class AmbassadorRetries(StrictModel):
    connect_failures: int = Field(
        2, ge=0, le=5,
        description="Retries, each on another Langflow pod where there is one, after a connection failed: the "
        "request never reached Langflow. A request that did is never sent twice (it could run a flow twice).",
    )


class OutlierEjection(StrictModel):
    consecutive_errors: int = Field(
        3, ge=1, le=100,
        description="A Langflow pod that fails this many requests in a row (refused connections, timeouts, 5xx "
        "answers) is taken out of rotation until its health check (`/health_check`) passes again.",
    )
    check_interval_seconds: int = Field(
        5, ge=1, le=60, description="How often each Langflow pod's `/health_check` is called.",
    )


class AmbassadorConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="API clients call Langflow through the ambassador (HAProxy), which adds the API key and a request "
        "id; Langflow's port then answers only the ambassador, oauth2-proxy and the ingress controller.",
    )
    image: HAProxyImage = Field(default_factory=HAProxyImage, description="The HAProxy image.")
    replicas: int = Field(2, ge=1, le=10, description="Pods of the shared ambassador (a PodDisruptionBudget above one).")
    port: int = Field(80, ge=1, le=65535, description="The shared ambassador's Service port.")
    sidecar_port: int = Field(
        15080, ge=1024, le=65535,
        description="Where the sidecar listens in a client's pod, on 127.0.0.1 only (nothing else may use its key): "
        "the client calls http://127.0.0.1:<sidecar_port>.",
    )
    admin_port: int = Field(
        8404, ge=1024, le=65535,
        description="The ambassador's own port for its probes (`/healthz`) and metrics (`/metrics`), on every "
        "address of its pod; no client-facing Service exposes it.",
    )
    resources: dict[str, dict[str, Quantity]] = Field(
        default_factory=lambda: {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        description="Container resources (`requests`, `limits`), for the Deployment and the sidecar alike.",
    )
    timeouts: AmbassadorTimeouts = Field(default_factory=AmbassadorTimeouts, description="Connect and response timeouts.")
    retries: AmbassadorRetries = Field(default_factory=AmbassadorRetries, description="Retries (connect failures only).")
    outlier_ejection: OutlierEjection = Field(
        default_factory=OutlierEjection, description="Passive ejection of a failing Langflow pod.")
    rate_limit_per_client: Optional[int] = Field(
        None,
        description="Requests per second each client may send (by its address: one client pod through the shared "
        "ambassador, the whole pod with the sidecar); above it the JSON 429. Unset: no limit.",
    )
    allowed_paths: list[str] = Field(
        default_factory=lambda: ["/api/v1/run/"],
        description="Path prefixes clients may call (the key the ambassador adds is the superuser's): anything else "
        "gets a JSON 403. Default: the run API only.",
    )
    cluster_domain: str = Field(
        "cluster.local",
        description="The cluster's DNS domain: HAProxy resolves Langflow's pods by their full name (it reads no "
        "search domains).",
    )
    client_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose pods call Langflow through the shared ambassador's Service (they reach it, "
        "never Langflow itself).",
    )
    sidecar_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose pods run the ambassador as a sidecar (the `ambassador_sidecar` output): the "
        "sidecar, in their pods, reaches Langflow's port.",
    )

    @field_validator("rate_limit_per_client")
    @classmethod
    def _rate(cls, value: Optional[int]) -> Optional[int]:
        if value is not None and value < 1:
            raise ValueError(f"{value} requests per second would refuse every request; give at least 1, or remove "
                             "the key for no limit")
        return value

    @field_validator("allowed_paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for index, path in enumerate(value):
            # No dot segments: a prefix is compared as written (the ambassador refuses such request paths anyway).
            if not re.fullmatch(r"/api/[A-Za-z0-9._~/-]*/", path) or "//" in path or re.search(r"/\.{1,2}/", path):
                raise at(f"[{index}]", f"{path!r}: give a prefix of Langflow's API ending in /, e.g. /api/v1/run/")
        if not value:
            raise ValueError("at least one path is required, e.g. [/api/v1/run/]")
        return value

    @field_validator("cluster_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return valid(value, host_name_problem(value, "cluster domain", "cluster.local"))

    _client_namespaces = field_validator("client_namespaces", "sidecar_namespaces")(
        classmethod(lambda cls, value: namespace_list(value)))

    @model_validator(mode="after")
    def _consistent(self) -> "AmbassadorConfig":
        problems: list[tuple[str, str]] = []
        if self.admin_port in (AMBASSADOR_PORT, self.sidecar_port):
            problems.append(("admin_port", f"{self.admin_port} is where the ambassador serves clients; choose another, e.g. 8404"))
        for index, namespace in enumerate(self.sidecar_namespaces):
            if namespace in self.client_namespaces:
                problems.append((f"sidecar_namespaces[{index}]", f"{namespace!r} is in client_namespaces too; a namespace "
                                 "uses the shared ambassador or the sidecar: list it once"))
        if not self.enabled:
            for key in AMBASSADOR_OFF_KEYS:
                if key in self.model_fields_set and getattr(self, key):
                    problems.append((key, "only used with the ambassador on; set ambassador.enabled: true, or remove it"))
        all_problems(self, problems)
        return self


class MetricsConfig(StrictModel):
    enabled: bool = Field(
        True,
        description="Langflow's Prometheus endpoint (and the ambassador's, on its admin_port), each on a port of its "
        "own that no client-facing Service exposes.",
    )
    langflow_port: int = Field(9090, ge=1024, le=65535, description="Langflow's metrics port (`/metrics`).")
    scrape: Literal["auto", "pod-monitor", "annotations"] = Field(
        "auto",
        description="How Prometheus finds the pods: `pod-monitor` (the Prometheus operator's PodMonitor objects), "
        "`annotations` (`prometheus.io/scrape`, `port`, `path` on the pods), or `auto`: a PodMonitor when the "
        "cluster has the `podmonitors.monitoring.coreos.com` CRD at preview, the annotations otherwise. The "
        "annotations are set in every mode.",
    )
    scrape_namespaces: list[str] = Field(
        default_factory=lambda: ["monitoring"],
        description="Namespaces whose pods (Prometheus) may reach the metrics ports.",
    )

    _namespaces = field_validator("scrape_namespaces")(classmethod(lambda cls, value: namespace_list(value)))

    @field_validator("langflow_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if value == CONTAINER_PORT:
            raise ValueError(f"{value} is Langflow's own port; choose another, e.g. 9090")
        return value
