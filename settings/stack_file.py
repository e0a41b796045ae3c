"""The config values a stack hands the program, read from the project's files.

What the Pulumi CLI passes for `langflow:` keys: each key's declared default
from `Pulumi.yaml`, then the stack file's values. Used where the program's
config is needed without the CLI (`make verify`, the mock tests).
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr

from settings.loader import PROJECT


class EncryptedValues(Exception):
    """The stack file holds secret values, which only the Pulumi CLI can decrypt."""


def stack_file_values(project_dir: Path, stack: str) -> dict[str, Any]:
    """This project's keys as `Pulumi.<stack>.yaml` writes them (`{secure: ...}` for an encrypted one)."""
    document = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    prefix = f"{PROJECT}:"
    return {key.removeprefix(prefix): value for key, value in (document.get("config") or {}).items()
            if key.startswith(prefix)}


def stack_values(project_dir: Path, stack: str) -> dict[str, Any]:
    declared = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: d["default"] for k, d in declared.items() if "default" in d}
    values.update(stack_file_values(project_dir, stack))
    encrypted = sorted(k for k, v in values.items() if _holds_secure(v))
    if encrypted:
        raise EncryptedValues(f"Pulumi.{stack}.yaml holds encrypted values ({', '.join(encrypted)})")
    return values


def _holds_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_holds_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secure(v) for v in value)
    return False


def secret_paths(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every config key whose type is a secret (SecretStr), as a path: new secret keys are covered as they come."""
    out: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        kinds = [field.annotation, *typing.get_args(field.annotation)]
        if SecretStr in kinds:
            out.append((*prefix, name))
        out += [path for kind in kinds if isinstance(kind, type) and issubclass(kind, BaseModel)
                for path in secret_paths(kind, (*prefix, name))]
    return out


def _kubeconfig_path(value: str) -> bool:
    """A kubeconfig given by its path (plain text is fine), not by its content."""
    return "\n" not in value and not value.lstrip().startswith(("apiVersion", "{", "clusters", "kind"))


def plaintext_secret_problems(project_dir: Path, stack: str, model: type[BaseModel]) -> list[tuple[str, str]]:
    """Secret keys the stack file holds in plain text (they would land in git), each with the command that stores it
    encrypted. `stack`: the stack's name (`dev`, or `org/project/dev`)."""
    name = stack.rpartition("/")[2]
    if not name or not (project_dir / f"Pulumi.{name}.yaml").is_file():
        return []
    written = stack_file_values(project_dir, name)
    problems = []
    for keys in secret_paths(model):
        value: Any = written.get(keys[0])
        for key in keys[1:]:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            continue  # absent, or `{secure: ...}`
        dotted = ".".join(keys)
        if dotted.endswith("kubeconfig") and _kubeconfig_path(str(value)):
            continue
        problems.append((dotted, f"is in plain text in Pulumi.{name}.yaml, which goes into git; store it encrypted: "
                         f"pulumi config set --secret --path {dotted} <value> -s {name} (the command replaces it)"))
    return problems
