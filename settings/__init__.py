"""Typed, validated stack settings: the config model, its loader and the flow files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from settings.flows import FlowError, FlowFile, default_flow, load_flow_folder
from settings.loader import ConfigError, parse_config, project_values
from settings.model import LangflowStackConfig


@dataclass(frozen=True)
class StackSettings:
    config: LangflowStackConfig
    flows: list[FlowFile] = field(default_factory=list)
    default_flow: Optional[str] = None


def load_settings(values: Mapping[str, Any], project_dir: Path) -> StackSettings:
    """Validate config, then the flow files it points at. Raises ConfigError with every problem."""
    config = parse_config(values)
    if config.flows.source != "folder":
        if config.flows.default_flow is None:
            return StackSettings(config)
        # Flows on a claim cannot be read here: trust the name the operator gave.
        return StackSettings(config, [], config.flows.default_flow)
    try:
        flows = load_flow_folder(project_dir / config.flows.folder, config.flows.folder)
        return StackSettings(config, flows, default_flow(flows, config.flows.default_flow))
    except FlowError as error:
        raise ConfigError(error.problems) from None


__all__ = [
    "ConfigError", "FlowFile", "LangflowStackConfig", "StackSettings", "load_settings", "project_values",
]
