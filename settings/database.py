"""Config of the PostgreSQL database component (`langflow:database.postgresql`).

Three modes, one surface: `in-cluster` (a StatefulSet of the official image),
`external` (the chart's own keys: host, port, database, user, password from an
existing Secret, plus TLS and an optional bootstrap Job) and `cloudnative-pg`
(a `Cluster` for clusters that run the operator). Rules that need other keys
live in settings/validation.py.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import Field, SecretStr, field_validator, model_validator

from settings import kube
from settings.syntax import host_name_problem, is_ip_literal
from settings.base import IMAGE_DIGEST, PinnedImage, moving_tag, pinned_tag_problem, Quantity, StrictModel, VolumeConfig, all_problems, at, valid

# Names Langflow's role and database get: what PostgreSQL accepts unquoted, at most 63 bytes.
PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Roles and databases PostgreSQL keeps for itself.
RESERVED_ROLES = ("postgres", "public", "none", "current_user", "session_user", "current_role")
RESERVED_DATABASES = ("postgres", "template0", "template1")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
POSTGRES_DEFAULT_TAG = "17.6"
MIN_POSTGRES_MAJOR = 12
# Records on the in-cluster data volume which major version initialised it: another major cannot read it.
MAJOR_ANNOTATION = "langflow.org/postgres-major"


def data_claim_name(app: str) -> str:
    """The in-cluster database volume (fixed: renaming it would orphan the database)."""
    return f"{app}-postgres-data"


def postgres_major(tag: str) -> Optional[int]:
    match = re.match(r"^(\d+)(\.\d+)?([-_.].*)?$", tag)
    return int(match.group(1)) if match else None


class PostgresImage(PinnedImage):
    repository: str = Field("postgres", description="The official PostgreSQL image (honours image.registry).")
    tag: str = Field(
        POSTGRES_DEFAULT_TAG,
        description="Pinned PostgreSQL version, `MAJOR.MINOR` with an optional suffix (12 or later). A new minor "
        "rolls out; a new major is refused while the data volume holds the old one (see the README's upgrade "
        "procedure).",
    )

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        major = postgres_major(value)
        # After PinnedImage's rule: MAJOR.MINOR, as the official image tags its releases.
        if major is None or "." not in value.split("-")[0]:
            raise ValueError(moving_tag(value, "is not a MAJOR.MINOR version (`17` alone moves)", POSTGRES_DEFAULT_TAG))
        if major < MIN_POSTGRES_MAJOR:
            raise ValueError(f"{value!r}: Langflow needs PostgreSQL {MIN_POSTGRES_MAJOR} or later; use e.g. {POSTGRES_DEFAULT_TAG}")
        return value

    @property
    def major(self) -> int:
        return postgres_major(self.tag)  # type: ignore[return-value]


class PostgresStorage(VolumeConfig):
    size: Quantity = Field("10Gi", description="Database volume size (at least 1Gi).")
    protect: bool = Field(
        True,
        description="Keep the database through `pulumi destroy` and mistakes: the volume, the StatefulSet and "
        "the generated passwords are Pulumi-protected, and the volume is retained in the cluster. Turn off "
        "only to delete the database on purpose.",
    )


class InClusterConfig(StrictModel):
    storage: PostgresStorage = Field(default_factory=PostgresStorage, description="The database volume.")
    resources: dict[str, dict[str, Quantity]] = Field(
        default_factory=lambda: {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        description="PostgreSQL container resources (`requests`, `limits`).",
    )

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for kind, amounts in value.items():
            if kind not in ("requests", "limits"):
                raise at(kube.key_path(kind).lstrip("."), "unknown key; use requests and limits")
            for name in amounts:
                if name not in ("cpu", "memory", "ephemeral-storage"):
                    raise at(f"{kind}{kube.key_path(name)}", "unknown resource; use cpu, memory, ephemeral-storage")
        return value


class SecretRef(StrictModel):
    name: str = Field(description="Name of an existing Secret in the namespace.")
    key: str = Field(description="Key inside that Secret.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return valid(value, kube.dns_subdomain_problem(value, "Secret name"))

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not value or len(value) > 253 or not kube.CONFIG_MAP_KEY.match(value):
            raise ValueError(f"{value!r} is not a Secret key; use letters, digits, '-', '_' and '.', e.g. url or password")
        return value


class AdminSecret(StrictModel):
    name: str = Field(description="Existing Secret with an administrator's credentials (a role that may create roles and databases).")
    user_key: str = Field("username", description="Key of the administrator's user name.")
    password_key: str = Field("password", description="Key of the administrator's password.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return SecretRef._name(value)

    @field_validator("user_key", "password_key")
    @classmethod
    def _key(cls, value: str) -> str:
        return SecretRef._key(value)


class BootstrapConfig(StrictModel):
    admin_secret: AdminSecret = Field(description="The administrator's credentials.")
    admin_database: str = Field("postgres", description="Database the administrator connects to.")

    @field_validator("admin_database")
    @classmethod
    def _admin_database(cls, value: str) -> str:
        if not PG_IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a database name PostgreSQL accepts unquoted; e.g. postgres")
        return value


class ExternalConfig(StrictModel):
    host: str = Field(description="Server host name or IP address (no scheme, no port).")
    port: int = Field(5432, ge=1, le=65535, description="Server port.")
    password_secret: Optional[SecretRef] = Field(
        None, description="The Langflow role's password in an existing Secret (`name`, `key`), as the chart took it."
    )
    password: Optional[SecretStr] = Field(
        None, description="The Langflow role's password as a secret config value (`pulumi config set --secret`)."
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", description="libpq sslmode. `verify-full` (recommended) checks the server against `ca_secret`."
    )
    ca_secret: Optional[SecretRef] = Field(
        None, description="Existing Secret (`name`, `key`) with the CA certificate the server's is checked against."
    )
    bootstrap: Optional[BootstrapConfig] = Field(
        None,
        description="Create the role and the database when they are missing (a Job, idempotent; it also keeps "
        "the role's password in step). Unset: they must exist.",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if is_ip_literal(value):
            return value
        problem = host_name_problem(value, "host name", "db.example.com")
        if problem:
            raise ValueError(f"{problem}, or an IP address (no scheme, no port)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ExternalConfig":
        problems: list[tuple[str, str]] = []
        if self.password_secret is not None and self.password is not None:
            problems.append(("password", "set password_secret or password, not both"))
        if self.password_secret is None and self.password is None and self.bootstrap is None:
            problems.append(("password_secret", "required: the Secret holding the Langflow role's password (or set password, "
                             "or bootstrap to have one generated)"))
        if self.sslmode in ("verify-ca", "verify-full") and self.ca_secret is None:
            problems.append(("ca_secret", f"required with sslmode {self.sslmode}: the Secret holding the server's CA certificate"))
        if self.ca_secret is not None and self.sslmode in ("disable", "allow", "prefer"):
            problems.append(("ca_secret", f"not used with sslmode {self.sslmode}; set sslmode: verify-full, or remove it"))
        all_problems(self, problems)
        return self


class CloudNativePGConfig(StrictModel):
    instances: int = Field(2, ge=1, le=9, description="PostgreSQL instances (one primary, the rest replicas).")
    image: str = Field(
        f"ghcr.io/cloudnative-pg/postgresql:{POSTGRES_DEFAULT_TAG}",
        description="Pinned operand image (`imageName`), a tag or digest of the operator's PostgreSQL images.",
    )
    storage: PostgresStorage = Field(default_factory=PostgresStorage, description="Each instance's volume.")
    volume_snapshot_class: Optional[str] = Field(
        None,
        description="VolumeSnapshotClass for the operator's backups (`backup.volumeSnapshot.className`). Set, the "
        "snapshot before each Langflow version change and the scheduled backups are the operator's own `Backup` and "
        "`ScheduledBackup` objects.",
    )

    @field_validator("volume_snapshot_class")
    @classmethod
    def _snapshot_class(cls, value: Optional[str]) -> Optional[str]:
        return valid(value, kube.dns_subdomain_problem(value, "VolumeSnapshotClass name") if value is not None else None)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        repository, _, tag = value.partition("@")[0].rpartition(":")
        digest = value.partition("@")[2]
        example = f"ghcr.io/cloudnative-pg/postgresql:{POSTGRES_DEFAULT_TAG}"
        if tag and "/" not in tag:
            valid(value, pinned_tag_problem(tag, POSTGRES_DEFAULT_TAG))
        if not digest and (not repository or "/" in tag or postgres_major(tag) is None or "." not in tag.split("-")[0]):
            raise ValueError(f"{value!r}: pin a PostgreSQL version, e.g. {example}")
        if digest and not IMAGE_DIGEST.match(digest):
            raise ValueError("the digest must be 'sha256:' followed by 64 lowercase hex characters")
        return value


class PostgresConfig(StrictModel):
    mode: Literal["in-cluster", "external", "cloudnative-pg"] = Field(
        "in-cluster",
        description="`in-cluster`: a StatefulSet of the official image; `external`: a server you run; "
        "`cloudnative-pg`: a `Cluster` of the CloudNativePG operator.",
    )
    database: str = Field("langflow", description="Langflow's own database.")
    user: str = Field("langflow", description="Langflow's own role (never the superuser).")
    image: PostgresImage = Field(
        default_factory=PostgresImage,
        description="The PostgreSQL image: the server in-cluster, and `psql` for the bootstrap Job.",
    )
    in_cluster: InClusterConfig = Field(default_factory=InClusterConfig, description="With mode `in-cluster`.")
    external: Optional[ExternalConfig] = Field(None, description="With mode `external` (required there).")
    cloudnative_pg: CloudNativePGConfig = Field(
        default_factory=CloudNativePGConfig, description="With mode `cloudnative-pg`."
    )

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if not PG_IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a database name PostgreSQL accepts unquoted: at most 63 lowercase "
                             "letters, digits and '_', not starting with a digit; e.g. langflow")
        if value in RESERVED_DATABASES:
            raise ValueError(f"{value!r} is PostgreSQL's own database; Langflow needs a database of its own, e.g. langflow")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not PG_IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a role name PostgreSQL accepts unquoted: at most 63 lowercase letters, "
                             "digits and '_', not starting with a digit; e.g. langflow")
        if value in RESERVED_ROLES or value.startswith("pg_"):
            raise ValueError(f"{value!r} is reserved (or the superuser); Langflow needs a role of its own, e.g. langflow")
        return value

    @model_validator(mode="after")
    def _mode(self) -> "PostgresConfig":
        if self.mode == "external" and self.external is None:
            raise at("external", "required with mode external: host, port and the password (password_secret)")
        if self.mode != "external" and self.external is not None:
            raise at("external", f"only used with mode external (mode is {self.mode}); remove it or set mode: external")
        for field, mode in (("in_cluster", "in-cluster"), ("cloudnative_pg", "cloudnative-pg")):
            if self.mode != mode and field in self.model_fields_set:
                raise at(field, f"only used with mode {mode} (mode is {self.mode}); remove it")
        return self


class UrlSecretRef(SecretRef):
    key: str = Field("url", description="Key inside that Secret.")


class DatabaseConfig(StrictModel):
    type: Literal["sqlite", "postgresql", "url"] = Field(
        "sqlite",
        description="`sqlite`: a file on the data volume (one replica only). `postgresql`: the PostgreSQL "
        "component (`database.postgresql`), which hands Langflow its URL in a Secret. `url`: a SQLAlchemy URL "
        "you keep in a Secret of your own (`database.url_secret`).",
    )
    url_secret: Optional[UrlSecretRef] = Field(
        None,
        description="With type `url`: the Secret (`name`, `key`, default key `url`) holding "
        "LANGFLOW_DATABASE_URL. Credentials in it must be percent-encoded.",
    )
    postgresql: Optional[PostgresConfig] = Field(
        None, description="With type `postgresql`: the database component (required there)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "DatabaseConfig":
        if self.type == "url" and self.url_secret is None:
            raise at("url_secret", "required when database.type is 'url'; set database.url_secret.name "
                     "to the Secret holding the database URL")
        if self.type != "url" and self.url_secret is not None:
            raise at("url_secret", "only used when database.type is 'url'; remove it or set database.type: url")
        if self.type == "postgresql" and self.postgresql is None:
            raise at("postgresql", "required when database.type is 'postgresql'; set database.postgresql.mode "
                     "(in-cluster, external or cloudnative-pg)")
        if self.type != "postgresql" and self.postgresql is not None:
            raise at("postgresql", "only used when database.type is 'postgresql'; remove it or set database.type: postgresql")
        return self
