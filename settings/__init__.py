"""Typed, validated stack settings: the config model, its rules, the flow files and cluster facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from settings.cluster import ClusterView, cluster_problems, pod_monitors_wanted
from settings.flows import FlowError, FlowFile, default_flow, load_flow_folder, synced_flow_problems
from settings.loader import ConfigError, collect_problems, config_key, project_values
from settings.model import LangflowStackConfig
from settings.stack_file import plaintext_secret_problems
from settings.validation import warnings


@dataclass(frozen=True)
class StackSettings:
    config: LangflowStackConfig
    flows: list[FlowFile] = field(default_factory=list)
    default_flow: Optional[str] = None
    # Metrics scraped through the Prometheus operator's PodMonitors (metrics.scrape, the cluster's CRDs).
    pod_monitors: bool = False
    # Allowed, but shown in every preview.
    warnings: list[str] = field(default_factory=list)


def load_settings(
    values: Mapping[str, Any],
    project_dir: Path,
    cluster: Optional[ClusterView] = None,
    stack: str = "",
) -> StackSettings:
    """Validate config, the flow files it points at and, given a cluster, what exists there.

    Raises ConfigError with every problem found, each naming its key or file.
    """
    config, found = collect_problems(values)
    found += plaintext_secret_problems(project_dir, stack, LangflowStackConfig)
    problems = [f"{config_key(path)}: {message}" for path, message in found]
    flows: list[FlowFile] = []
    chosen: Optional[str] = None
    if config.section_valid("flows"):
        try:
            if config.flows.source == "folder":
                flows = load_flow_folder(project_dir, config.flows.folder)
                chosen = default_flow(flows, config.flows.default_flow)
                if config.flows.update == "sync":
                    problems += synced_flow_problems(flows, config.flows.folder, chosen)
            else:
                # Flows on a claim cannot be read here: trust the name the operator gave.
                chosen = config.flows.default_flow
        except FlowError as error:
            problems += error.problems
    notes: list[str] = []
    if cluster is not None and not problems:
        # Only a valid config is compared with the cluster: the reads need every key they use.
        cluster_found, notes = cluster_problems(config.whole(), cluster, stack)
        problems += [f"{config_key(path)}: {message}" for path, message in cluster_found]
    if problems:
        raise ConfigError(problems)
    whole = config.whole()
    pod_monitors, scrape_notes = pod_monitors_wanted(whole.metrics, cluster)
    return StackSettings(whole, flows, chosen, warnings=warnings(whole) + notes + scrape_notes, pod_monitors=pod_monitors)


__all__ = [
    "ClusterView", "ConfigError", "FlowFile", "LangflowStackConfig", "StackSettings", "load_settings",
    "project_values",
]
