"""Turn raw Pulumi config into a validated LangflowStackConfig, or one clear error.

All problems are collected and reported together, each with the key path as
`pulumi config set --path` spells it and what would fix it, before the
program registers any resource.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from pydantic import ValidationError

from settings.model import LangflowStackConfig, stack_problems

PROJECT = "langflow"

# Fix hints for pydantic's own error types; our validators write their own.
_HINTS = {
    "extra_forbidden": "unknown key; remove it or fix its spelling (see the README's configuration reference)",
    "missing": "required; set it",
    "string_type": "must be a string (quote it in the stack file, e.g. tag: \"1.6\")",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
}

# A validator may point below the field it checks by starting its message
# with the sub-path: "url_secret: required ..." or "[2].name: ...".
_SUBPATH = re.compile(r"^((?:\[\d+\])?(?:\.?[a-z_][a-z_0-9]*)*): ", re.DOTALL)


class ConfigError(Exception):
    """Invalid configuration: every problem, one per line, key first."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(
            f"Invalid configuration for stack ({count}); nothing was deployed:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def config_key(path: str) -> str:
    """The name `pulumi config` uses for a key path: `langflow:image.tag`."""
    return f"{PROJECT}:{path}"


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _join(path: str, sub: str) -> str:
    if not path:
        return sub.lstrip(".")
    return path + sub if sub.startswith("[") else f"{path}.{sub.lstrip('.')}"


def describe_validation_error(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        path = _path(item["loc"])
        message = item["msg"]
        if item["type"] == "value_error":
            message = message.removeprefix("Value error, ")
            match = _SUBPATH.match(message)
            if match and match.group(1):
                path, message = _join(path, match.group(1)), message[match.end():]
        elif item["type"] == "literal_error":
            message = f"{message} (got {item['input']!r})"
        elif item["type"] in _HINTS:
            shown = item["type"] not in {"missing", "extra_forbidden"}
            message = _HINTS[item["type"]] + (f" (got {item['input']!r})" if shown else "")
        problems.append(f"{config_key(path)}: {message}")
    return problems


def decode_value(raw: Any) -> Any:
    """Pulumi hands object and array values over as JSON text; scalars stay text.

    Only `{`/`[` values are decoded, so a tag such as "1.6" is never turned into a number.
    """
    if isinstance(raw, str) and raw[:1] in {"{", "["}:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def project_values(all_config: Mapping[str, Any]) -> dict[str, Any]:
    """This project's keys (`langflow:x`) as a plain dict, other namespaces dropped."""
    prefix = f"{PROJECT}:"
    return {k[len(prefix):]: decode_value(v) for k, v in all_config.items() if k.startswith(prefix)}


def parse_config(values: Mapping[str, Any]) -> LangflowStackConfig:
    """Validate the project's config values; raise ConfigError listing every problem."""
    try:
        config = LangflowStackConfig.model_validate(dict(values))
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    problems = stack_problems(config)
    if problems:
        raise ConfigError([f"{PROJECT}:{p}" for p in problems])
    return config
