"""The config values a stack hands the program, read from the project's files.

What the Pulumi CLI passes for `langflow:` keys: each key's declared default
from `Pulumi.yaml`, then the stack file's values. Used where the program's
config is needed without the CLI (`make verify`, the mock tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from settings.loader import PROJECT


class EncryptedValues(Exception):
    """The stack file holds secret values, which only the Pulumi CLI can decrypt."""


def stack_values(project_dir: Path, stack: str) -> dict[str, Any]:
    declared = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: d["default"] for k, d in declared.items() if "default" in d}
    document = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    prefix = f"{PROJECT}:"
    for key, value in (document.get("config") or {}).items():
        if key.startswith(prefix):
            values[key.removeprefix(prefix)] = value
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
