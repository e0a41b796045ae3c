"""The stack configuration: one pydantic model tree, unknown keys forbidden.

Every top-level field is one Pulumi config key (`langflow:<field>`). Field
descriptions are the documentation: `Pulumi.yaml` and the README reference are
generated from them (`make docs`), and a test keeps all three in sync.

Our own keys are snake_case. Values that are plain Kubernetes objects
(affinity, tolerations, extra volumes, `valueFrom`) keep Kubernetes'
camelCase, so they can be pasted from Kubernetes docs unchanged.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# Kubernetes object names (RFC 1123 label, as Services require).
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# RFC 1123 subdomain: Secret, ConfigMap, PVC and StorageClass names.
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
IMAGE_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
REGISTRY_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_KEY_NAME = re.compile(r"^[-._a-zA-Z0-9]+$")

# Pod Security "restricted" allows only these volume sources.
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}

LANGFLOW_DEFAULT_TAG = "1.6.4"


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ImageConfig(StrictModel):
    registry: Optional[str] = Field(
        None,
        description="Registry host that replaces the repository's registry, so an air-gapped "
        "platform pulls every image from its own registry (e.g. `registry.internal:5000`). "
        "Unset: pull from the repository as written.",
    )
    repository: str = Field("langflowai/langflow", description="Image repository.")
    tag: str = Field(
        LANGFLOW_DEFAULT_TAG,
        description="Pinned Langflow version tag (1.6.x). `latest` and other moving tags are "
        "rejected: a release must be reproducible and rollback-able.",
    )
    digest: Optional[str] = Field(
        None, description="Optional `sha256:` digest; when set the image is pulled by digest."
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
        if value is not None and not REGISTRY_HOST.match(value):
            raise ValueError(
                f"{value!r} is not a registry host; use a host with an optional port, "
                "e.g. registry.internal:5000 (no scheme, no path)"
            )
        return value

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        registry, path = split_registry(value)
        if not IMAGE_REPOSITORY.match(path) or (registry is not None and not REGISTRY_HOST.match(registry)):
            raise ValueError(
                f"{value!r} is not an image repository; write it without tag or digest, "
                "e.g. langflowai/langflow or registry.internal:5000/langflowai/langflow"
            )
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if value.lower() in {"latest", "main", "nightly", "stable"}:
            raise ValueError(
                f"{value!r} is a moving tag: the same config could deploy different code and "
                f"rollback could not restore a release; pin a version such as {LANGFLOW_DEFAULT_TAG}"
            )
        if not IMAGE_TAG.match(value):
            raise ValueError(f"{value!r} is not a valid image tag; use a version such as {LANGFLOW_DEFAULT_TAG}")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not IMAGE_DIGEST.match(value):
            raise ValueError("must be 'sha256:' followed by 64 lowercase hex characters")
        return value

    @field_validator("pull_secrets")
    @classmethod
    def _pull_secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            if not DNS_SUBDOMAIN.match(name):
                raise ValueError(f"{name!r} is not a Secret name (lowercase letters, digits, '-', '.')")
        return value


def split_registry(repository: str) -> tuple[Optional[str], str]:
    """`registry.internal:5000/team/app` -> (`registry.internal:5000`, `team/app`).

    As container runtimes read it: the first part is a registry host only when it
    has a dot or a port, or is `localhost`.
    """
    first, _, rest = repository.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, repository


def _check_quantities(value: dict[str, str]) -> dict[str, str]:
    for resource, quantity in value.items():
        if resource not in {"cpu", "memory", "ephemeral-storage"}:
            raise ValueError(f"{resource}: unknown resource; use cpu, memory or ephemeral-storage")
        if not QUANTITY.match(str(quantity)):
            raise ValueError(f"{resource}: {quantity!r} is not a quantity; write e.g. 500m or 1Gi")
    return value


class ResourcesConfig(StrictModel):
    requests: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "500m", "memory": "1Gi"},
        description="Container resource requests (Kubernetes quantities).",
    )
    limits: dict[str, str] = Field(
        default_factory=lambda: {"memory": "2Gi"},
        description="Container resource limits. No CPU limit by default: throttling slows "
        "flow runs more than it protects neighbours.",
    )

    @field_validator("requests")
    @classmethod
    def _requests(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_quantities(value)

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_quantities(value)


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
    size: str = Field("1Gi", description="Volume size. Can grow later if the storage class allows expansion.")
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

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not QUANTITY.match(value) or value.endswith("m"):
            raise ValueError(f"{value!r} is not a storage size; write e.g. 1Gi or 20Gi")
        return value

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a StorageClass name")
        return value


class SecretKeyRef(StrictModel):
    name: str = Field(description="Name of an existing Secret in the namespace.")
    key: str = Field("url", description="Key inside that Secret.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a Secret name (lowercase letters, digits, '-', '.')")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not SECRET_KEY_NAME.match(value):
            raise ValueError(f"{value!r} is not a Secret key (letters, digits, '-', '_', '.')")
        return value


class DatabaseConfig(StrictModel):
    type: Literal["sqlite", "url"] = Field(
        "sqlite",
        description="`sqlite`: a file on the data volume (one replica only). `url`: a SQLAlchemy "
        "URL read from a Secret, e.g. the one the PostgreSQL component produces.",
    )
    url_secret: Optional[SecretKeyRef] = Field(
        None,
        description="With type `url`: the Secret (`name`, `key`, default key `url`) holding "
        "LANGFLOW_DATABASE_URL. Credentials in it must be percent-encoded.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "DatabaseConfig":
        if self.type == "url" and self.url_secret is None:
            raise ValueError(
                "url_secret: required when database.type is 'url'; set database.url_secret.name "
                "to the Secret holding the database URL"
            )
        if self.type == "sqlite" and self.url_secret is not None:
            raise ValueError(
                "url_secret: only used when database.type is 'url'; remove it or set database.type: url"
            )
        return self


class AuthConfig(StrictModel):
    enabled: bool = Field(
        False,
        description="Require login (LANGFLOW_AUTO_LOGIN=false). Only the superuser adds users; "
        "there is no self sign-up.",
    )
    superuser: str = Field("langflow", description="Superuser name.")
    superuser_password: Optional[SecretStr] = Field(
        None,
        description="Superuser password (set with `pulumi config set --secret --path "
        "auth.superuser_password`). Unset: generated once, stable, exported as a secret.",
    )
    secret_key: Optional[SecretStr] = Field(
        None,
        description="Key that signs tokens and encrypts stored credentials: URL-safe base64 of "
        "32 bytes (a Fernet key). Unset: generated once and kept stable. Changing it logs "
        "everyone out and makes stored credentials unreadable. Used even with auth off.",
    )
    new_user_is_active: bool = Field(False, description="New users are active without superuser approval.")
    enable_superuser_cli: bool = Field(False, description="Allow `langflow superuser` inside the pod.")
    access_token_expire_seconds: int = Field(3600, gt=0, description="Access token lifetime.")
    refresh_token_expire_seconds: int = Field(604800, gt=0, description="Refresh token lifetime.")

    @field_validator("superuser")
    @classmethod
    def _superuser(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("superuser_password")
    @classmethod
    def _password(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and len(value.get_secret_value()) < 12:
            raise ValueError("must be at least 12 characters; or unset it to have one generated")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: Optional[SecretStr]) -> Optional[SecretStr]:
        if value is not None and not is_fernet_key(value.get_secret_value()):
            raise ValueError(
                "must be URL-safe base64 of exactly 32 bytes, or Langflow fails with 'Fernet key "
                "must be 32 url-safe base64-encoded bytes'; generate one with: python3 -c "
                "\"import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())\" "
                "or unset it to have one generated"
            )
        return value

    @model_validator(mode="after")
    def _lifetimes(self) -> "AuthConfig":
        if self.refresh_token_expire_seconds <= self.access_token_expire_seconds:
            raise ValueError(
                "refresh_token_expire_seconds: must be longer than access_token_expire_seconds "
                f"({self.access_token_expire_seconds}), or users are logged out when the access token expires"
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
        "flows", description="With source `folder`: the folder, relative to the project root."
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

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") in {"", "/app", "/tmp", "/app/data"}:
            raise ValueError(f"{value!r}: use an absolute folder of its own, e.g. /app/flows")
        return value

    @field_validator("claim_name")
    @classmethod
    def _claim(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value!r} is not a PersistentVolumeClaim name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "FlowsConfig":
        if self.source == "claim" and not self.claim_name:
            raise ValueError("claim_name: required when flows.source is 'claim'")
        if self.source != "claim" and self.claim_name:
            raise ValueError("claim_name: only used when flows.source is 'claim'; remove it or set flows.source: claim")
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
    max_file_size_upload_mb: int = Field(100, ge=1, description="Largest upload accepted, in MB.")


class ExtraEnvVar(StrictModel):
    """One env var, in Kubernetes form: `value` or `valueFrom`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    value: Optional[str] = None
    value_from: Optional[dict[str, Any]] = Field(None, alias="valueFrom")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "ExtraEnvVar":
        if (self.value is None) == (self.value_from is None):
            raise ValueError("set exactly one of value or valueFrom")
        return self

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value} if self.value_from is None else {
            "name": self.name, "valueFrom": self.value_from}


class ExtraVolumeMount(StrictModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    mount_path: str = Field(alias="mountPath")
    read_only: bool = Field(False, alias="readOnly")
    sub_path: Optional[str] = Field(None, alias="subPath")

    @field_validator("mount_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path")
        return value

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "mountPath": self.mount_path, "readOnly": self.read_only}
        if self.sub_path:
            out["subPath"] = self.sub_path
        return out


class Toleration(StrictModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    key: Optional[str] = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Optional[str] = None
    effect: Optional[Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]] = None
    toleration_seconds: Optional[int] = Field(None, alias="tolerationSeconds")

    def manifest(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class LangflowStackConfig(StrictModel):
    """Root of the stack configuration: one field per `langflow:<key>`."""

    namespace: str = Field("langflow", description="Namespace for every object of this stack.")
    create_namespace: bool = Field(
        True,
        description="Create the namespace (labelled Pod Security `restricted`). Off: it must exist.",
    )
    name: str = Field(
        "langflow",
        description="Base name of the Kubernetes objects (Deployment, Service, volume, ...).",
    )
    image: ImageConfig = Field(default_factory=ImageConfig, description="The Langflow image.")
    replicas: int = Field(1, ge=1, le=20, description="Pod count. SQLite allows exactly one.")
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig, description="Container resources.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Pod tolerations (Kubernetes form).")
    affinity: dict[str, Any] = Field(
        default_factory=dict, description="Pod affinity (Kubernetes form: nodeAffinity, podAntiAffinity, ...)."
    )
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="The Langflow Service.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="The data volume.")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="Where Langflow keeps its state.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Login and tokens.")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="How Langflow runs.")
    flows: FlowsConfig = Field(default_factory=FlowsConfig, description="Flows loaded at start-up.")
    extra_env: list[ExtraEnvVar] = Field(
        default_factory=list,
        description="Extra container env (`name` with `value` or `valueFrom`), e.g. LLM API keys from Secrets.",
    )
    extra_volumes: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Extra pod volumes (Kubernetes form). Only the types Pod Security `restricted` allows.",
    )
    extra_volume_mounts: list[ExtraVolumeMount] = Field(
        default_factory=list, description="Extra container volume mounts (`name`, `mountPath`, `readOnly`, `subPath`)."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels added to every object.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations added to every object.")

    @field_validator("namespace", "name")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        if not DNS_LABEL.match(value) or len(value) > 40:
            raise ValueError(
                f"{value!r}: use at most 40 lowercase letters, digits and '-', starting with a letter"
            )
        return value

    @field_validator("extra_volumes")
    @classmethod
    def _extra_volumes(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, volume in enumerate(value):
            name = volume.get("name")
            if not isinstance(name, str) or not DNS_LABEL.match(name):
                raise ValueError(f"[{index}].name: every volume needs a name (lowercase letters, digits, '-')")
            sources = set(volume) - {"name"}
            if len(sources) != 1:
                raise ValueError(f"[{index}]: volume {name!r} needs exactly one source, e.g. secret or configMap")
            (source,) = sources
            if source not in RESTRICTED_VOLUME_TYPES:
                raise ValueError(
                    f"[{index}]: volume {name!r} is a {source} volume, not allowed under Pod Security "
                    f"'restricted'; use one of {', '.join(sorted(RESTRICTED_VOLUME_TYPES))}"
                )
        return value



def stack_problems(config: LangflowStackConfig) -> list[str]:
    """Rules that span several keys, checked once every key is valid on its own.

    Each problem starts with the key path to change.
    """
    # Imported here: what the program manages is decided next to the workload spec.
    from components.langflow_spec import ENV_SOURCE, MANAGED_VOLUMES, managed_env_names, managed_mount_paths

    problems: list[str] = []
    rwo = config.storage.enabled and config.storage.access_mode != "ReadWriteMany"
    if config.database.type == "sqlite":
        if config.replicas != 1:
            problems.append(
                "replicas: SQLite allows exactly one replica; set replicas: 1 or database.type: url"
            )
        if config.runtime.workers != 1:
            problems.append("runtime.workers: SQLite allows one worker; set runtime.workers: 1 or database.type: url")
        if not config.storage.enabled:
            problems.append(
                "storage.enabled: SQLite keeps its database on the data volume; without it every "
                "restart loses all flows and users. Set storage.enabled: true"
            )
    elif config.replicas > 1 and rwo:
        problems.append(
            "storage.access_mode: more than one replica cannot share a "
            f"{config.storage.access_mode} volume; use ReadWriteMany, or storage.enabled: false"
        )
    if config.service.type != "ClusterIP" and not config.auth.enabled:
        problems.append(
            f"service.type: {config.service.type} exposes Langflow outside the cluster while "
            "auth.enabled is false, so anyone reaching it can run code; set auth.enabled: true "
            "or service.type: ClusterIP"
        )
    if config.auth.enabled and config.flows.source != "none" and _version_before(config.image.tag, (1, 6)):
        problems.append(
            f"image.tag: Langflow {config.image.tag} skips loading flows when auth is on "
            "(fixed in 1.6.0); use 1.6.0 or later"
        )
    managed_env = managed_env_names(config)
    extra_names = [env.name for env in config.extra_env]
    for index, name in enumerate(extra_names):
        if name in managed_env:
            source = ENV_SOURCE.get(name, "a fixed setting")
            problems.append(f"extra_env[{index}].name: {name} is set by this program from {source}; change that instead")
        elif extra_names.index(name) != index:
            problems.append(f"extra_env[{index}].name: {name} is already set by extra_env[{extra_names.index(name)}]")
    volume_names = [volume["name"] for volume in config.extra_volumes]
    for name in sorted({n for n in volume_names if volume_names.count(n) > 1 or n in MANAGED_VOLUMES}):
        problems.append(f"extra_volumes: volume name {name!r} is used twice or by the program; rename it")
    for index, mount in enumerate(config.extra_volume_mounts):
        if mount.name not in volume_names:
            problems.append(
                f"extra_volume_mounts[{index}].name: no extra volume named {mount.name!r}; add it to extra_volumes"
            )
        managed = [p for p in managed_mount_paths(config) if _overlaps(p, mount.mount_path)]
        if managed:
            problems.append(
                f"extra_volume_mounts[{index}].mountPath: {mount.mount_path} overlaps {managed[0]}, "
                "which the program mounts; choose another path"
            )
    return problems


def _overlaps(a: str, b: str) -> bool:
    a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _version_before(tag: str, minimum: tuple[int, int]) -> bool:
    match = re.match(r"^v?(\d+)\.(\d+)", tag)
    return bool(match) and (int(match.group(1)), int(match.group(2))) < minimum
