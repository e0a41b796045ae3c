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

from settings.model import LangflowStackConfig
from settings.validation import PartialConfig, rule_problems

PROJECT = "langflow"

# Fix hints for pydantic's own error types; our validators write their own.
_HINTS = {
    "extra_forbidden": "unknown key; remove it or fix its spelling (see the README's configuration reference)",
    "missing": "required; set it",
    "string_type": "must be a string (quote it in the stack file, e.g. \"1.6.4\" or \"true\")",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping of keys to values",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
}
# Bounds: pydantic's context names the limit.
_BOUNDS = {
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


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


def describe_validation_error(error: ValidationError) -> list[tuple[str, str]]:
    """Each pydantic error as (key path, message with the fix)."""
    problems = []
    for item in error.errors(include_url=False):
        path = _path(item["loc"])
        message = item["msg"]
        kind, context = item["type"], item.get("ctx") or {}
        if kind == "at_path":
            path, message = _join(path, context["path"]), context["message"]
        elif kind == "value_error":
            message = message.removeprefix("Value error, ")
        elif kind == "literal_error":
            message = f"must be one of {context.get('expected', '')} (got {item['input']!r})"
        elif kind in _BOUNDS:
            message = _BOUNDS[kind].format(**context) + f" (got {item['input']!r})"
        elif kind in _HINTS:
            shown = kind not in {"missing", "extra_forbidden"}
            message = _HINTS[kind] + (f" (got {item['input']!r})" if shown else "")
        problems.append((path, message))
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


def parse_partial(values: Mapping[str, Any]) -> tuple[PartialConfig, list[tuple[str, str]]]:
    """Validate what can be validated: the config with every failed top-level key unchecked.

    Returns the partial config and the field problems. Keys that failed are left
    at their defaults underneath, and reading them raises `Unchecked`.
    """
    values = dict(values)
    try:
        return PartialConfig(LangflowStackConfig.model_validate(values), ()), []
    except ValidationError as error:
        problems = describe_validation_error(error)
        failed = {item["loc"][0] for item in error.errors() if item["loc"]}
        problems += _hidden_problems(values, error, problems)
    valid = {k: v for k, v in values.items() if k not in failed}
    return PartialConfig(LangflowStackConfig.model_validate(valid), failed), problems


# A section's own cross-key checks (pydantic's model validators) run only once all its fields are valid, so a bad
# value would hide them: a short password hid token lifetimes in the wrong order. Each pass takes the values that
# failed out (their defaults stand in) and validates again; what it finds elsewhere is reported too, but never a
# follow-up of taking a value out: a problem above a value taken out, or one that names it.
HIDDEN_PASSES = 4


def _without(values: Any, loc: tuple[Any, ...]) -> Any:
    """`values` without the value at `loc` (a copy; unchanged where `loc` leads nowhere)."""
    if not loc:
        return values
    head, rest = loc[0], loc[1:]
    if isinstance(values, dict) and head in values:
        return ({k: v for k, v in values.items() if k != head} if not rest
                else {**values, head: _without(values[head], rest)})
    if isinstance(values, list) and isinstance(head, int) and 0 <= head < len(values) and rest:
        return [*values[:head], _without(values[head], rest), *values[head + 1:]]
    return values


def _hidden_problems(values: dict[str, Any], error: ValidationError,
                     reported: list[tuple[str, str]]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    seen = {path for path, _ in reported}
    taken_out: list[str] = []
    for _ in range(HIDDEN_PASSES):
        for item in error.errors():
            loc = tuple(item["loc"]) + _sub_path(item)
            values = _without(values, loc)
            taken_out.append(_path(loc))
        try:
            LangflowStackConfig.model_validate(values)
            return found
        except ValidationError as again:
            names = {re.split(r"[.\[]", out)[-1].strip('"]') for out in taken_out}
            new = [(path, message) for path, message in describe_validation_error(again)
                   if not _follow_up(path, message, seen, taken_out, names)]
            if not new:
                return found
            found += new
            seen |= {path for path, _ in new}
            error = again
    return found


def _under(path: str, above: str) -> bool:
    return path == above or path.startswith((above + ".", above + "["))


def _follow_up(path: str, message: str, seen: set[str], taken_out: list[str], names: set[str]) -> bool:
    """A problem already said (at or under a reported key), or one that taking a value out made: above that
    value, or naming it."""
    return (any(_under(path, old) for old in seen) or any(_under(out, path) for out in taken_out)
            or any(len(name) > 2 and re.search(rf"\b{re.escape(name)}\b", message) for name in names))


def _sub_path(item: Any) -> tuple[Any, ...]:
    """The key below the failing model that an `at_path` error names (`tls.secret_name`, `[2]`)."""
    if item["type"] != "at_path":
        return ()
    parts: list[Any] = []
    for part in re.findall(r'\[(\d+)\]|\["((?:[^"\\]|\\")*)"\]|([^.\[\]]+)', (item.get("ctx") or {}).get("path", "")):
        index, quoted, plain = part
        parts.append(int(index) if index else quoted.replace('\\"', '"') if quoted else plain)
    return tuple(parts)


def collect_problems(values: Mapping[str, Any]) -> tuple[PartialConfig, list[tuple[str, str]]]:
    """Field problems, then every rule that can run on the valid part."""
    config, problems = parse_partial(values)
    return config, problems + rule_problems(config)


def parse_config(values: Mapping[str, Any]) -> LangflowStackConfig:
    """Validate the project's config values; raise ConfigError listing every problem."""
    config, problems = collect_problems(values)
    if problems:
        raise ConfigError([f"{config_key(path)}: {message}" for path, message in problems])
    return config.whole()
