"""Building blocks of the config model, shared by every component's config module."""

from __future__ import annotations

import re
from typing import Annotated, Any, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from settings import kube

IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# A release is a version: 1.6.4, v1.6.4, 1.6.4-custom.2 (a floating 1.6 is not).
VERSION_TAG = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-._][A-Za-z0-9][A-Za-z0-9._-]*)?$")
# Where a component pins MAJOR.MINOR (PostgreSQL 17.6), its own rule asks for more.
VERSION_TAG_START = re.compile(r"^v?[0-9]+\.[0-9]+")
# Words that name a moving target, wherever they appear in a tag (`1.6.4-latest`, `nightly-2025`).
MOVING_TAG_WORDS = {
    "latest", "main", "master", "dev", "develop", "edge", "nightly", "stable", "current",
    "head", "trunk", "canary", "rolling", "snapshot", "next", "preview", "unstable", "lts",
}
IMAGE_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
IMAGE_REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
REGISTRY_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def at(sub_path: str, message: str) -> PydanticCustomError:
    """A validation error about `sub_path` below the field being validated."""
    return PydanticCustomError("at_path", "{message}", {"path": sub_path, "message": message})


def all_problems(model: BaseModel, problems: list[tuple[str, str]]) -> None:
    """Raise every (sub-key, message) a model's own cross-key check found, together (none: return), so one
    problem never hides the next."""
    if problems:
        raise ValidationError.from_exception_data(type(model).__name__, [
            InitErrorDetails(type=at(path, message), loc=(), input=None) for path, message in problems])


def _quantity(value: Any) -> Any:
    """Kubernetes quantities, quoted or not (`cpu: 1` is as good as `cpu: "1"`)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a quantity; write e.g. 500m or 1Gi")
    if isinstance(value, (int, float)):
        value = kube.quantity_text(value)
    if isinstance(value, str):
        try:
            kube.parse_quantity(value)
        except ValueError as error:
            raise ValueError(f"{error}; write e.g. 500m, 2 or 1Gi") from None
    return value


Quantity = Annotated[str, BeforeValidator(_quantity)]


def _without_nulls(value: Any) -> Any:
    """In a Kubernetes object a null field is an unset field: drop them, so a null required field is missing."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# A Kubernetes object passed through as written (checked against the API schema in settings/validation.py).
KubeObject = Annotated[dict[str, Any], BeforeValidator(_without_nulls)]


def not_blank(value: str, example: str) -> str:
    if not value.strip():
        raise ValueError(f"must not be empty; set it, e.g. {example}, or remove the key for the default")
    return value


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def is_registry_host(first: str) -> bool:
    """How container runtimes decide that the first path part is a registry."""
    return "." in first or ":" in first or first == "localhost"


def split_registry(repository: str) -> tuple[Optional[str], str]:
    """`registry.internal:5000/team/app` -> (`registry.internal:5000`, `team/app`)."""
    first, _, rest = repository.partition("/")
    if rest and is_registry_host(first):
        return first, rest
    return None, repository


def tag_minor(tag: str) -> Optional[tuple[int, int]]:
    """(major, minor) of a version tag, None when the tag is no version."""
    match = re.match(r"^v?(\d+)\.(\d+)", tag)
    return (int(match.group(1)), int(match.group(2))) if match else None


def version_before(tag: str, minimum: tuple[int, int]) -> bool:
    minor = tag_minor(tag)
    return minor is not None and minor < minimum


def storage_class_name(value: Optional[str]) -> Optional[str]:
    """A StorageClass name, or None for the cluster's default class (an empty name is refused)."""
    if value == "":
        raise ValueError("must not be empty; remove the key to use the cluster's default StorageClass")
    problem = kube.dns_subdomain_problem(value, "StorageClass name") if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


def valid(value: Any, problem: Optional[str]) -> Any:
    """`value`, or the ValueError `problem` describes (a field validator's last line)."""
    if problem:
        raise ValueError(problem)
    return value


def pinned_tag_problem(tag: str, example: str) -> Optional[str]:
    """Why `tag` does not pin a release (None when it does): every tag is a version, never a moving name."""
    if not IMAGE_TAG.match(tag):
        return (f"{tag!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most 128); "
                f"pin a version such as {example}")
    moving = sorted({w.lower() for w in re.split(r"[-._]", tag)} & MOVING_TAG_WORDS)
    if moving or not VERSION_TAG_START.match(tag):
        return moving_tag(tag, f"names a moving target ({moving[0]})" if moving else "is not a version", example)
    return None


def whole_version(tag: str, example: str, *, v_prefix: bool = False) -> tuple[int, int]:
    """(major, minor) of a release tag `X.Y.Z...` (`vX.Y.Z...` allowed with `v_prefix`); else the ValueError."""
    match = re.match(r"^v?(\d+)\.(\d+)\.\d+" if v_prefix else r"^(\d+)\.(\d+)\.\d+", tag)
    if not match:
        raise ValueError(moving_tag(tag, f"is not a whole version ({'vX.Y.Z' if v_prefix else 'X.Y.Z'})", example))
    return int(match[1]), int(match[2])


def moving_tag(tag: str, reason: str, example: str) -> str:
    return (f"{tag!r} is a moving tag: it {reason}, so the same config could deploy different code and a "
            f"rollback could not restore a release; pin a version such as {example} (and a digest for prod)")


def image_reference(repository: str, tag: str, digest: Optional[str], registry: Optional[str]) -> str:
    """`[registry/]repository:tag[@digest]`, the registry override replacing the repository's own."""
    if registry:
        repository = f"{registry}/{split_registry(repository)[1]}"
    reference = f"{repository}:{tag}"
    return f"{reference}@{digest}" if digest else reference


class PinnedImage(StrictModel):
    """An image the program deploys: a repository, a pinned tag and an optional digest.

    Every tag is a version, never a moving name (`latest`, `main`, `1.6.4-nightly`): the same
    config must deploy the same code, or a rollback could not restore a release. Subclasses
    set the defaults and add their own version rule.
    """

    repository: str
    tag: str
    digest: Optional[str] = Field(None, description="Optional `sha256:` digest; recommended for prod.")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        registry, path = split_registry(value)
        if not IMAGE_REPOSITORY.match(path) or (registry is not None and not REGISTRY_HOST.match(registry)):
            example = cls.model_fields["repository"].default
            raise ValueError(f"{value!r} is not an image repository; write it in lowercase without tag or digest, "
                             f"e.g. {example} or registry.internal:5000/{split_registry(example)[1]}")
        return value

    @field_validator("tag")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return valid(value, pinned_tag_problem(value, cls.model_fields["tag"].default))

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not IMAGE_DIGEST.match(value):
            raise ValueError("must be 'sha256:' followed by 64 lowercase hex characters (as `docker buildx imagetools "
                             "inspect` prints it), or remove the key to pull by tag")
        return value

    def reference(self, registry: Optional[str] = None) -> str:
        return image_reference(self.repository, self.tag, self.digest, registry)


class VolumeConfig(StrictModel):
    """A volume the program creates: its size, StorageClass and Pulumi protection (defaults per volume)."""

    size: Quantity
    storage_class: Optional[str] = Field(None, description="StorageClass name. Unset: the cluster's default class.")
    protect: bool = True

    _storage_class = field_validator("storage_class")(classmethod(lambda cls, value: storage_class_name(value)))


class TrustedCA(StrictModel):
    """A PEM bundle of CA certificates in a ConfigMap or Secret of the namespace (neither: none)."""

    config_map: Optional[str] = Field(
        None, description="A ConfigMap holding the bundle (e.g. one trust-manager writes).")
    secret: Optional[str] = Field(None, description="A Secret holding the bundle.")
    key: str = Field("ca.crt", description="The key that holds the PEM bundle.")

    @field_validator("config_map", "secret")
    @classmethod
    def _name(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else valid(value, kube.dns_subdomain_problem(value, "name"))

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", value) or value in (".", ".."):
            raise ValueError(f"{value!r} is not a ConfigMap or Secret key; write e.g. ca.crt")
        return value

    @property
    def enabled(self) -> bool:
        return self.config_map is not None or self.secret is not None

    @model_validator(mode="after")
    def _one_source(self) -> "TrustedCA":
        if self.config_map is not None and self.secret is not None:
            raise at("secret", "set one of config_map or secret (where the CA bundle is), not both")
        if "key" in self.model_fields_set and not self.enabled:
            raise at("key", "only used with config_map or secret (where the CA bundle is); set one, or remove it")
        return self
