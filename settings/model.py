"""The stack configuration: one pydantic model tree, unknown keys forbidden.

Every top-level field is one Pulumi config key (`langflow:<field>`). Field
descriptions are the documentation: `Pulumi.yaml` and the README reference are
generated from them (`make docs`), and a test keeps all three in sync.

What one value can be checked on its own is checked here. Rules that report
several problems in one value (Kubernetes objects passed through, labels) or
that span several keys live in `settings/validation.py`, which runs them all
and reports every problem at once.

Our own keys are snake_case. Values that are plain Kubernetes objects
(affinity, tolerations, extra volumes and mounts, `valueFrom`) keep
Kubernetes' camelCase, so they can be pasted from Kubernetes docs unchanged.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from settings import kube
from settings.base import (  # noqa: F401 - re-exported: the config model's vocabulary
    ENV_NAME, IMAGE_DIGEST, IMAGE_REPOSITORY, IMAGE_TAG, MOVING_TAG_WORDS, REGISTRY_HOST, VERSION_TAG, KubeObject,
    PinnedImage, Quantity, StrictModel, at, is_registry_host, moving_tag, not_blank, split_registry, storage_class_name, tag_minor,
    TrustedCA, all_problems, valid, version_before,
)
from settings.ambassador import AmbassadorConfig, MetricsConfig
from settings.backups import BackupsConfig
from settings.database import DatabaseConfig
from settings.edge import IngressConfig, SSOConfig
from settings.network import NetworkPoliciesConfig
from settings.managed import MANAGED_PATHS, STARTUP_BUDGET_SECONDS
from settings.syntax import expansion_problem, odd_character, with_character

LANGFLOW_DEFAULT_TAG = "1.6.4"
# The Langflow releases `make verify` proves in CI (verify/locks/): the platform's default and
# the newest on PyPI. The supported range runs from the oldest verified minor to the newest.
VERIFIED_LANGFLOW_VERSIONS = ("1.6.4", "1.13.0")
SUPPORTED_LANGFLOW_MINORS = ((1, 6), (1, 13))
SUPPORTED_RANGE_TEXT = "1.6.0 to 1.13.x"
# Longest token lifetimes: beyond these Langflow's expiry arithmetic can overflow, and
# a stolen token would stay valid for longer than any sane session.
MAX_ACCESS_TOKEN_SECONDS = 24 * 3600
MAX_REFRESH_TOKEN_SECONDS = 365 * 24 * 3600
# `<name>-postgres-bootstrap-<8 hex>` is the longest object name the program makes; a Job's name becomes its
# pods' `job-name` label (63 characters at most). tests/test_stacks.py checks every name at this length.
MAX_NAME_LENGTH = 35


class ImageConfig(PinnedImage):
    registry: Optional[str] = Field(
        None,
        description="Registry host that replaces the repository's registry, so an air-gapped "
        "platform pulls every image from its own registry (e.g. `registry.internal:5000`). "
        "It must look like a host to a container runtime: hold a dot or a port, or be `localhost`. "
        "Unset: pull from the repository as written.",
    )
    repository: str = Field("langflowai/langflow", description="Image repository.")
    tag: str = Field(
        LANGFLOW_DEFAULT_TAG,
        description=f"Pinned Langflow version tag, `X.Y.Z` with an optional suffix, within the supported "
        f"range {SUPPORTED_RANGE_TEXT} (verified: {', '.join(VERIFIED_LANGFLOW_VERSIONS)}). `latest`, `1.6`, "
        "`main`, `nightly-...` and other moving tags are rejected: a release must be reproducible and "
        "rollback-able.",
    )
    allow_unverified_version: bool = Field(
        False,
        description=f"Accept a tag outside {SUPPORTED_RANGE_TEXT}, at your own risk: the program's settings "
        "and `make verify` are proven on the supported range only.",
    )
    digest: Optional[str] = Field(
        None,
        description="Optional `sha256:` digest; when set the image is pulled by digest (recommended "
        "for prod: a tag can be re-pushed, a digest cannot).",
    )
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        "IfNotPresent", description="Kubernetes imagePullPolicy."
    )
    pull_secrets: list[str] = Field(
        default_factory=list,
        description="Names of existing docker-registry Secrets in the namespace used to pull the image.",
    )

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        if not REGISTRY_HOST.match(value):
            raise ValueError(
                f"{value!r} is not a registry host; use a host with an optional port, "
                "e.g. registry.internal:5000 (no scheme, no path)"
            )
        if not is_registry_host(value.split("/")[0]):
            raise ValueError(
                f"{value!r} has no dot, no port and is not localhost, so container runtimes read it as a "
                f"Docker Hub namespace ({value}/langflowai/langflow on docker.io) and the override does "
                "nothing; use the registry's full host name, e.g. registry.internal or registry:5000"
            )
        return value

    @field_validator("tag")
    @classmethod
    def _version(cls, value: str) -> str:
        # After PinnedImage's rule: a Langflow release is X.Y.Z, with an optional suffix.
        if not VERSION_TAG.match(value):
            raise ValueError(moving_tag(value, "is not a whole version (X.Y.Z)", LANGFLOW_DEFAULT_TAG))
        return value

    @model_validator(mode="after")
    def _supported(self) -> "ImageConfig":
        oldest, newest = SUPPORTED_LANGFLOW_MINORS
        minor = tag_minor(self.tag)
        if not self.allow_unverified_version and minor is not None and not oldest <= minor <= newest:
            raise at("tag", f"{self.tag!r} is outside the supported Langflow range {SUPPORTED_RANGE_TEXT} "
                     f"(verified on {', '.join(VERIFIED_LANGFLOW_VERSIONS)}); use a version in the range, or set "
                     "image.allow_unverified_version: true to take the risk")
        return self

    def reference(self, registry: Optional[str] = None) -> str:
        """The image as the pods pull it (`image.registry` applied)."""
        return super().reference(registry or self.registry)

    @field_validator("pull_secrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        for index, name in enumerate(value):
            problem = kube.dns_subdomain_problem(name, "Secret name")
            if problem:
                raise at(f"[{index}]", problem)
            if value.index(name) != index:
                raise at(f"[{index}]", f"{name!r} is listed twice; remove one")
        return value


class ResourcesConfig(StrictModel):
    # Measured by `make verify` (PSS of every Langflow process, after start and a flow run): 1.75 GiB for
    # 1.6.4 with its PyPI dependencies (PyTorch comes in through docling), 1.1 GiB for 1.13.0.
    requests: dict[str, Quantity] = Field(
        default_factory=lambda: {"cpu": "500m", "memory": "2Gi"},
        description="Container resource requests (`cpu`, `memory`, `ephemeral-storage`; Kubernetes "
        "quantities, quoted or not). Setting it replaces the whole default. The memory request covers "
        "what Langflow 1.6 uses at rest (about 1.75 GiB), so the scheduler places it where that is free.",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=lambda: {"memory": "3Gi"},
        description="Container resource limits. No CPU limit by default: throttling slows "
        "flow runs more than it protects neighbours. Each request must be at most its limit. The memory "
        "limit leaves room for flow runs above the 1.75 GiB Langflow 1.6 uses at rest (`make verify` fails "
        "when the process at rest is above 75% of it); at least 1Gi.",
    )


class RolloutConfig(StrictModel):
    timeout_seconds: int = Field(
        STARTUP_BUDGET_SECONDS + 300,
        ge=10,
        le=3600,
        description="How long a release waits for the new Langflow pods to be ready before it counts as failed: "
        "`pulumi up` then fails (and `make up ATOMIC=1` returns to the previous release). Also the "
        "Deployment's `progressDeadlineSeconds`. The default is the startup probe's 300 s budget plus time to "
        "pull the image and schedule the pod; below 300 s a slow but healthy start fails the release.",
    )


class ServiceConfig(StrictModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP",
        description="Service type. ClusterIP by default (the chart defaulted to LoadBalancer, "
        "which publishes an API that runs code): expose Langflow through the ingress and "
        "oauth2-proxy instead.",
    )
    port: int = Field(7860, ge=1, le=65535, description="Service port.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Service annotations.")


class StorageConfig(StrictModel):
    enabled: bool = Field(
        True,
        description="Persistent volume for Langflow's data folder (`/app/data`: the SQLite "
        "database, uploaded files). Required with SQLite. When off, uploads live on an "
        "emptyDir and are lost with the pod.",
    )
    size: Quantity = Field(
        "1Gi", description="Volume size (at least 100Mi). Can grow later if the storage class allows expansion."
    )
    storage_class: Optional[str] = Field(
        None, description="StorageClass name. Unset: the cluster's default class."
    )
    access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"] = Field(
        "ReadWriteOnce", description="Volume access mode. More than one replica needs ReadWriteMany."
    )
    protect: bool = Field(
        True,
        description="Pulumi-protect the volume (and the namespace holding it): `pulumi destroy` "
        "and any change that would replace it fail instead of deleting data. The volume is "
        "also retained in the cluster if it ever leaves the program.",
    )

    _storage_class = field_validator("storage_class")(classmethod(lambda cls, value: storage_class_name(value)))


class AuthConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Require login (LANGFLOW_AUTO_LOGIN=false). Off: no login at all, and anyone who "
        "reaches the Service gets a superuser token from `/api/v1/auto_login`. Langflow lets anyone who "
        "reaches it register (`POST /api/v1/users/`, no credentials needed); such accounts stay inactive "
        "until the superuser activates them, unless `new_user_is_active` is on.",
    )
    superuser: str = Field("langflow", description="Superuser name (with auth on).")
    superuser_password: Optional[SecretStr] = Field(
        None,
        description="Superuser password, at least 12 characters, with auth on (set with `pulumi config "
        "set --secret --path auth.superuser_password`). Unset: generated once, stable, exported as a secret.",
    )
    secret_key: Optional[SecretStr] = Field(
        None,
        description="Key that signs tokens and encrypts stored credentials: URL-safe base64 of "
        "32 bytes (a Fernet key). Unset: generated once and kept stable. Changing it logs "
        "everyone out and makes stored credentials unreadable. Used even with auth off.",
    )
    new_user_is_active: bool = Field(
        False,
        description="Accounts that register themselves are active at once, without the superuser's "
        "approval. Anyone who reaches Langflow can register, so keep it off unless only trusted "
        "people can reach it (behind single sign-on).",
    )
    enable_superuser_cli: bool = Field(False, description="Allow `langflow superuser` inside the pod.")
    access_token_expire_seconds: int = Field(
        3600, gt=0, le=MAX_ACCESS_TOKEN_SECONDS, description="Access token lifetime (at most one day)."
    )
    refresh_token_expire_seconds: int = Field(
        604800, gt=0, le=MAX_REFRESH_TOKEN_SECONDS, description="Refresh token lifetime (at most 365 days)."
    )

    @field_validator("superuser")
    @classmethod
    def _superuser(cls, value: str) -> str:
        return valid(not_blank(value, "admin"), expansion_problem(value))

    @field_validator("superuser_password")
    @classmethod
    def _password(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and len(value.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters; or remove the key to have one generated")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and not is_fernet_key(value.get_secret_value()):
            raise ValueError(
                "must be URL-safe base64 of exactly 32 bytes, or Langflow fails with 'Fernet key "
                "must be 32 url-safe base64-encoded bytes'; generate one with: python3 -c "
                "\"import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())\" "
                "or remove the key to have one generated"
            )
        return value

    @model_validator(mode="after")
    def _lifetimes(self) -> "AuthConfig":
        if self.refresh_token_expire_seconds <= self.access_token_expire_seconds:
            raise at(
                "refresh_token_expire_seconds",
                "must be longer than access_token_expire_seconds "
                f"({self.access_token_expire_seconds}), or users are logged out when the access token expires",
            )
        return self


def is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode())) == 32 and len(value) == 44
    except (binascii.Error, ValueError):
        return False


class FlowsConfig(StrictModel):
    source: Literal["none", "folder", "claim"] = Field(
        "folder",
        description="Where flows come from: `folder` (JSON files in this repo, validated and "
        "packed into a ConfigMap), `claim` (an existing PVC) or `none`.",
    )
    folder: str = Field(
        "flows",
        description="With source `folder`: the folder, relative to the project root and inside it "
        "(symlinks out of the project are refused: what deploys is what is in git).",
    )
    claim_name: Optional[str] = Field(
        None, description="With source `claim`: name of an existing PersistentVolumeClaim holding the flows."
    )
    mount_path: str = Field(
        "/app/flows", description="Where flows appear in the pod (LANGFLOW_LOAD_FLOWS_PATH)."
    )
    default_flow: Optional[str] = Field(
        None,
        description="Flow id or endpoint name that clients run by default (exported). Unset with "
        "one flow in the folder: that flow.",
    )
    update: Literal["sync", "restart"] = Field(
        "sync",
        description="How a change to the flows goes live (source `folder`). `sync`: a Job of the same "
        "image applies them through Langflow's API (created, updated in place, deleted when gone from "
        "the folder), after building each one under a temporary flow; no pod restarts, and a failed "
        "check changes nothing. Every flow then needs an `endpoint_name`. `restart`: the flows are part "
        "of the pod template, so a change rolls every Langflow pod (a cold start each, and on SQLite a "
        "short outage).",
    )

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str) -> str:
        not_blank(value, "flows")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError(with_character(f"{value!r}: a folder name holds no control characters; e.g. flows", value))
        if value.startswith("/") or ".." in re.split(r"[/\\]", value):
            raise ValueError(f"{value!r}: give a folder inside the project, relative to its root, e.g. flows")
        return value

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        not_blank(value, "/app/flows")
        valid(value, expansion_problem(value) or (with_character(f"{value!r}: use a plain path, e.g. /app/flows", value)
                                                   if odd_character(value) else None))
        clash = [p for p in MANAGED_PATHS if kube.paths_overlap(p, value)]
        if not value.startswith("/") or clash or kube.normal_path(value) in {"/", "/app"}:
            reason = f"it overlaps {clash[0]}, which the program mounts" if clash else "it must be an absolute folder"
            raise ValueError(f"{value!r}: {reason}; use an absolute folder of its own, e.g. /app/flows")
        return kube.normal_path(value)

    @field_validator("claim_name")
    @classmethod
    def _claim(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else valid(value, kube.dns_subdomain_problem(value, "PersistentVolumeClaim name"))

    @field_validator("default_flow")
    @classmethod
    def _default_flow(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else not_blank(value, "echo")

    @model_validator(mode="after")
    def _consistent(self) -> "FlowsConfig":
        problems: list[tuple[str, str]] = []
        if self.source == "claim" and not self.claim_name:
            problems.append(("claim_name", "required when flows.source is 'claim'"))
        if self.source != "claim" and self.claim_name:
            problems.append(("claim_name", "only used when flows.source is 'claim'; remove it or set flows.source: claim"))
        if self.source != "folder" and "folder" in self.model_fields_set:
            problems.append(("folder", "only used when flows.source is 'folder'; remove it or set flows.source: folder"))
        if self.source == "none" and "mount_path" in self.model_fields_set:
            problems.append(("mount_path", "not used when flows.source is 'none'; remove it"))
        if self.source == "none" and "default_flow" in self.model_fields_set:
            problems.append(("default_flow", "not used when flows.source is 'none' (there are no flows to run); remove it"))
        if self.source != "folder" and "update" in self.model_fields_set:
            problems.append(("update", "only used with flows.source: folder (flows from git, synced or rolled out); remove it "
                             "or set flows.source: folder"))
        all_problems(self, problems)
        return self


class RuntimeConfig(StrictModel):
    backend_only: bool = Field(
        False,
        description="Serve the API without the UI (`langflow run --backend-only`), the "
        "recommended mode for production serving of flows from git.",
    )
    workers: int = Field(
        1, ge=1, le=16, description="Uvicorn workers per pod (LANGFLOW_WORKERS). More than one needs database.type url."
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field("info", description="Log level.")
    max_file_size_upload_mb: int = Field(100, ge=1, le=10240, description="Largest upload accepted, in MB.")


class ExtraEnvVar(StrictModel):
    """One env var, in Kubernetes form: `value` or `valueFrom`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    value: Optional[str] = None
    value_from: Optional[KubeObject] = Field(None, alias="valueFrom")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name; use letters, digits and '_', "
                "not starting with a digit, e.g. OPENAI_API_KEY"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "ExtraEnvVar":
        if (self.value is None) == (self.value_from is None):
            raise ValueError("set exactly one of value or valueFrom")
        return self

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value} if self.value_from is None else {
            "name": self.name, "valueFrom": self.value_from}


class LangflowStackConfig(StrictModel):
    """Root of the stack configuration: one field per `langflow:<key>`."""

    namespace: str = Field(
        "langflow",
        description="Namespace for every object of this stack. `kube-*` namespaces are refused, and so is "
        "`default` with `create_namespace` on.",
    )
    create_namespace: bool = Field(
        True,
        description="Create the namespace (labelled Pod Security `restricted`, protected with the data "
        "volume). A namespace that already exists and was not created by this stack is refused: set this "
        "off to deploy into it as it is (it is then never relabelled or protected).",
    )
    name: str = Field(
        "langflow",
        description=f"Base name of the Kubernetes objects (Deployment, Service, volume, ...): at most "
        f"{MAX_NAME_LENGTH} characters, so that the longest name made from it (the database bootstrap Job's, "
        "with Pulumi's 8-character suffix) stays within the 63 characters Kubernetes allows in the Job's label.",
    )
    image: ImageConfig = Field(default_factory=ImageConfig, description="The Langflow image.")
    replicas: int = Field(1, ge=1, le=20, description="Pod count. SQLite allows exactly one.")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="Container resources.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector (label keys and values).")
    tolerations: list[KubeObject] = Field(
        default_factory=list, description="Pod tolerations (Kubernetes form: key, operator, value, effect)."
    )
    affinity: KubeObject = Field(
        default_factory=dict, description="Pod affinity (Kubernetes form: nodeAffinity, podAntiAffinity, ...)."
    )
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="The Langflow Service.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="How releases roll out.")
    ingress: IngressConfig = Field(default_factory=IngressConfig, description="The Ingress, with TLS.")
    sso: SSOConfig = Field(default_factory=SSOConfig, description="Single sign-on: oauth2-proxy and Dex.")
    network_policies: NetworkPoliciesConfig = Field(
        default_factory=NetworkPoliciesConfig, description="Who may reach each pod, and where pods may connect."
    )
    ambassador: AmbassadorConfig = Field(
        default_factory=AmbassadorConfig,
        description="The ambassador for API clients: HAProxy that holds the API key, adds request ids and fails clearly.",
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus metrics and how they are scraped.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="The data volume.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="Where Langflow keeps its state.")
    backups: BackupsConfig = Field(
        default_factory=BackupsConfig,
        description="Database snapshots before version changes, scheduled backups, and the volume they are kept on.",
    )
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Login and tokens.")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="How Langflow runs.")
    flows: FlowsConfig = Field(default_factory=FlowsConfig, description="Flows loaded at start-up.")
    extra_env: list[ExtraEnvVar] = Field(
        default_factory=list,
        description="Extra container env (`name` with `value` or `valueFrom`), e.g. LLM API keys from "
        "Secrets. Variables the program sets (see the README) are refused in any letter case, as "
        "Langflow reads its settings case-insensitively.",
    )
    extra_volumes: list[KubeObject] = Field(
        default_factory=list,
        description="Extra pod volumes (Kubernetes form). Only the types Pod Security `restricted` allows.",
    )
    extra_volume_mounts: list[KubeObject] = Field(
        default_factory=list,
        description="Extra container volume mounts (Kubernetes form: `name`, `mountPath`, `readOnly`, `subPath`).",
    )
    trusted_ca: TrustedCA = Field(
        default_factory=TrustedCA,
        description="A CA bundle of the platform (a private CA): Langflow trusts it for every https call "
        "(SSL_CERT_FILE, REQUESTS_CA_BUNDLE: Dex's keys, LLM gateways), and oauth2-proxy for the issuer. It "
        "replaces the public CAs for Langflow, so it must hold them too, e.g. a trust-manager Bundle with "
        "`useDefaultCAs: true`. Neither `config_map` nor `secret`: the public CAs of the image.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels added to every object.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations added to every object.")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        problem = kube.dns_label_problem(value, "namespace name")
        if problem:
            raise ValueError(problem)
        if value.startswith("kube-"):
            raise ValueError(
                f"{value!r} is reserved for Kubernetes' own components; Pod Security 'restricted' there "
                "would stop system pods. Use a namespace of Langflow's own, e.g. langflow"
            )
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not kube.DNS_LABEL.match(value) or not value[:1].isalpha() or len(value) > MAX_NAME_LENGTH:
            raise ValueError(with_character(
                f"{value!r}: use at most {MAX_NAME_LENGTH} lowercase letters, digits and '-', starting with a letter "
                "(the longest name made from it, a Job's with Pulumi's suffix, must stay within the 63 characters of "
                "a label), e.g. langflow", value))
        return value
