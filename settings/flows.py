"""Flow files: validated before anything is applied, then packed for the pod.

Langflow upserts every `*.json` in LANGFLOW_LOAD_FLOWS_PATH at start-up
(matched by endpoint name, then id). A broken file must never reach the
cluster, so every file is checked here and all problems are reported at once.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from settings.loader import config_key

CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
# A ConfigMap holds at most 1 MiB including metadata; keep a margin.
MAX_PACKED_BYTES = 900 * 1024


class FlowError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class FlowFile:
    file_name: str
    text: str
    flow_id: Optional[str]
    name: str
    endpoint_name: Optional[str]


def flow_problems(document: Any) -> list[str]:
    """What is wrong with one parsed flow document (empty when it is a valid flow)."""
    if not isinstance(document, dict):
        return ["the top level must be a JSON object (a flow exported from Langflow)"]
    problems = []
    if not isinstance(document.get("name"), str) or not document["name"].strip():
        problems.append("'name' must be a non-empty string")
    flow_id = document.get("id")
    if flow_id is not None and not _is_uuid(flow_id):
        problems.append(f"'id' must be a UUID (got {flow_id!r})")
    endpoint = document.get("endpoint_name")
    if endpoint is not None and (not isinstance(endpoint, str) or not ENDPOINT_NAME.match(endpoint)):
        problems.append(f"'endpoint_name' may hold only letters, digits, '-' and '_' (got {endpoint!r})")
    data = document.get("data")
    if not isinstance(data, dict):
        return problems + ["'data' must be an object holding 'nodes' and 'edges'"]
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list):
        problems.append("'data.nodes' must be a list")
        nodes = []
    if not isinstance(edges, list):
        problems.append("'data.edges' must be a list")
        edges = []
    seen: set[str] = set()
    for index, node in enumerate(nodes):
        node_id = node.get("id") if isinstance(node, dict) else None
        if not isinstance(node_id, str) or not node_id:
            problems.append(f"data.nodes[{index}] has no 'id'")
        elif node_id in seen:
            problems.append(f"data.nodes[{index}]: node id {node_id!r} is used twice")
        else:
            seen.add(node_id)
    for index, edge in enumerate(edges):
        if not isinstance(edge, dict):
            problems.append(f"data.edges[{index}] must be an object")
            continue
        for end in ("source", "target"):
            if edge.get(end) not in seen:
                problems.append(
                    f"data.edges[{index}]: {end} {edge.get(end)!r} is not a node of this flow"
                )
    return problems


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
        return isinstance(value, str)
    except ValueError:
        return False


def load_flow_folder(folder: Path, shown_as: str) -> list[FlowFile]:
    """Read and validate every `*.json` in `folder`; raise FlowError naming each bad file.

    `shown_as` is how the folder is named in messages (the configured, relative path).
    """
    if not folder.is_dir():
        raise FlowError([f"{config_key('flows.folder')}: {shown_as!r} is not a folder; create it or set flows.source: none"])
    files = sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file())
    if not files:
        raise FlowError([f"{config_key('flows.folder')}: no *.json flow files in {shown_as!r}; add one or set flows.source: none"])
    problems: list[str] = []
    flows: list[FlowFile] = []
    for path in files:
        where = f"{shown_as.rstrip('/')}/{path.name}"
        if not CONFIGMAP_KEY.match(path.name):
            problems.append(f"{where}: file name may hold only letters, digits, '-', '_' and '.'")
            continue
        text = path.read_text(encoding="utf-8")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
            continue
        found = flow_problems(document)
        problems.extend(f"{where}: {p}" for p in found)
        if not found:
            flows.append(FlowFile(path.name, text, document.get("id"), document["name"], document.get("endpoint_name")))
    problems.extend(_clashes(flows, shown_as))
    size = sum(len(f.text.encode()) for f in flows)
    if size > MAX_PACKED_BYTES:
        problems.append(
            f"{config_key('flows.folder')}: the flows in {shown_as!r} total {size // 1024} KiB, more than a ConfigMap "
            f"holds ({MAX_PACKED_BYTES // 1024} KiB); put them on a volume and use flows.source: claim"
        )
    if problems:
        raise FlowError(problems)
    return flows


def _clashes(flows: list[FlowFile], shown_as: str) -> list[str]:
    """Langflow matches flows by endpoint name, then id: two files must not claim the same one."""
    problems = []
    for label, key in (("id", lambda f: f.flow_id), ("endpoint_name", lambda f: f.endpoint_name)):
        owners: dict[str, str] = {}
        for flow in flows:
            value = key(flow)
            if value is None:
                continue
            if value in owners:
                problems.append(
                    f"{shown_as.rstrip('/')}/{flow.file_name}: {label} {value!r} is also used by "
                    f"{owners[value]}; each flow needs its own"
                )
            owners[value] = flow.file_name
    return problems


def flows_digest(flows: list[FlowFile]) -> str:
    """One hash over every file name and content: it changes exactly when a flow changes."""
    digest = hashlib.sha256()
    for flow in sorted(flows, key=lambda f: f.file_name):
        digest.update(flow.file_name.encode() + b"\0" + flow.text.encode() + b"\0")
    return digest.hexdigest()


def default_flow(flows: list[FlowFile], wanted: Optional[str]) -> Optional[str]:
    """The flow clients run by default: `wanted` if it names a flow, the only flow otherwise.

    Raises FlowError when `wanted` names no flow in the folder.
    """
    if wanted is None:
        if len(flows) == 1:
            only = flows[0]
            return only.endpoint_name or only.flow_id
        return None
    for flow in flows:
        if wanted in {flow.flow_id, flow.endpoint_name}:
            return wanted
    known = sorted({v for f in flows for v in (f.flow_id, f.endpoint_name) if v})
    raise FlowError([f"{config_key('flows.default_flow')}: {wanted!r} is not the id or endpoint name of a flow; known: {', '.join(known) or 'none'}"])
