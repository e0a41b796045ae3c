"""Flow files: validated before anything is applied, then packed for the pod.

Langflow upserts every `*.json` in LANGFLOW_LOAD_FLOWS_PATH at start-up
(matched by endpoint name, then id; a file named `<uuid>.json` takes that id).
A file it cannot load, or one that breaks its start-up or its graph builder,
must never reach the cluster, so every file is checked here, as Langflow
reads it (langflow 1.6 `upsert_flow_from_file`, `Flow` and `Graph.from_payload`),
and all problems are reported at once, each naming the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from settings.kube import CONFIG_MAP_KEY
from settings.loader import config_key

ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# A ConfigMap holds at most 1 MiB including metadata; keep a margin.
MAX_PACKED_BYTES = 900 * 1024
# Node templates of these types are components: Langflow builds them from their code.
COMPONENT_TYPES = ("Component", "CustomComponent")
NOTE_NODE = "noteNode"
# Smoke tests of `<name>.json` live beside it in `<name>.smoke.yaml` (not a `.json`: Langflow
# would load it as a flow): a list of {name, input, expect}; `make verify` runs each case.
SMOKE_SUFFIX = ".smoke.yaml"


class FlowError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class SmokeTest:
    """Run the flow with `input`; its output must contain `expect`."""

    name: str
    input: str
    expect: str


@dataclass(frozen=True)
class FlowFile:
    file_name: str
    text: str
    # The id Langflow gives the flow (the file name's, when it is a UUID), lowercase.
    flow_id: Optional[str]
    name: str
    endpoint_name: Optional[str]
    smoke_tests: tuple[SmokeTest, ...] = ()

    @property
    def run_name(self) -> str:
        """What `POST /api/v1/run/{flow}` takes: the endpoint name, else the id."""
        return self.endpoint_name or str(self.flow_id)


def canonical_uuid(value: Any) -> Optional[str]:
    """The UUID Langflow reads from `value` (any letter case), or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def flow_problems(document: Any) -> list[str]:
    """What is wrong with one parsed flow document (empty when Langflow can load and build it)."""
    if not isinstance(document, dict):
        return [f"the top level must be a JSON object (a flow exported from Langflow), not {_type_name(document)}"]
    problems = []
    if not isinstance(document.get("name"), str) or not document["name"].strip():
        problems.append("'name' must be a non-empty string")
    flow_id = document.get("id")
    if flow_id is not None and canonical_uuid(flow_id) is None:
        problems.append(f"'id' must be a UUID (got {flow_id!r}); export the flow again or remove 'id'")
    endpoint = document.get("endpoint_name")
    if endpoint is not None and (not isinstance(endpoint, str) or not ENDPOINT_NAME.match(endpoint)):
        problems.append(f"'endpoint_name' may hold only letters, digits, '-' and '_' (got {endpoint!r})")
    problems += _metadata_problems(document)
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
    built: dict[str, dict[str, Any]] = {}  # node id -> its `data.node`, for the edge checks
    for index, node in enumerate(nodes):
        problems += _node_problems(f"data.nodes[{index}]", node, built)
    for index, edge in enumerate(edges):
        problems += _edge_problems(f"data.edges[{index}]", edge, built)
    return problems


def _metadata_problems(document: dict[str, Any]) -> list[str]:
    """The other fields Langflow's `Flow` model validates: a bad one fails its start-up."""
    problems = []
    for field in ("description", "icon", "gradient", "action_name", "action_description"):
        if document.get(field) is not None and not isinstance(document[field], str):
            problems.append(f"'{field}' must be a string or null (got {_type_name(document[field])})")
    for field in ("is_component", "webhook", "locked", "mcp_enabled"):
        if document.get(field) is not None and not isinstance(document[field], bool):
            problems.append(f"'{field}' must be true or false (got {document[field]!r})")
    colour = document.get("icon_bg_color")
    if colour is not None and (not isinstance(colour, str) or not HEX_COLOUR.match(colour)):
        problems.append(f"'icon_bg_color' must be a colour like #1a2b3c (got {colour!r})")
    tags = document.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        problems.append("'tags' must be a list of strings")
    if document.get("access_type") not in (None, "PRIVATE", "PUBLIC"):
        problems.append(f"'access_type' must be PRIVATE or PUBLIC (got {document['access_type']!r})")
    updated = document.get("updated_at")
    if updated is not None:
        try:
            datetime.fromisoformat(updated)
        except (TypeError, ValueError):
            problems.append(f"'updated_at' must be an ISO date and time (got {updated!r}); or remove it")
    for field in ("user_id", "folder_id"):
        if document.get(field) is not None:
            problems.append(f"'{field}' ties the flow to a user or folder of another Langflow; remove it "
                            "(flows from the folder belong to the superuser's default folder)")
    return problems


def _node_problems(at: str, node: Any, built: dict[str, dict[str, Any]]) -> list[str]:
    if not isinstance(node, dict):
        return [f"{at} must be an object, not {_type_name(node)}"]
    node_id = node.get("id")
    if not isinstance(node_id, str) or not node_id:
        return [f"{at} has no 'id'"]
    if node_id in built:
        return [f"{at}: node id {node_id!r} is used twice"]
    built[node_id] = {}
    if node.get("type") == NOTE_NODE:
        return []  # notes are not part of the graph
    data = node.get("data")
    if not isinstance(data, dict):
        return [f"{at} ({node_id}): 'data' must be an object describing the component"]
    problems = []
    if not isinstance(data.get("id"), str) or not data["id"]:
        problems.append(f"{at} ({node_id}): 'data.id' is required (the node's id)")
    if not isinstance(data.get("type"), str) or not data["type"]:
        problems.append(f"{at} ({node_id}): 'data.type' is required (the component's type, e.g. ChatInput)")
    body = data.get("node")
    template = body.get("template") if isinstance(body, dict) else None
    if not isinstance(template, dict) or not isinstance(template.get("_type"), str):
        return problems + [f"{at} ({node_id}): 'data.node.template' with its '_type' is missing, so Langflow cannot "
                           "build the node ('Error while creating graph from payload'); export the flow from the "
                           "Langflow UI instead of writing nodes by hand"]
    if isinstance(body.get("flow"), dict):
        built[node_id] = body
        return problems  # a group node: Langflow ungroups it before building
    if template["_type"] in COMPONENT_TYPES:
        code = template.get("code")
        if not isinstance(code, dict) or not isinstance(code.get("value"), str) or not code["value"].strip():
            problems.append(f"{at} ({node_id}): 'data.node.template.code.value' (the component's code) is missing; "
                            "export the flow from the Langflow UI")
        outputs = body.get("outputs")
        if not isinstance(outputs, list) or not all(
                isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("types"), list)
                for o in outputs):
            problems.append(f"{at} ({node_id}): 'data.node.outputs' must list the outputs, each with 'name' and 'types'")
    elif not isinstance(body.get("base_classes"), list):
        problems.append(f"{at} ({node_id}): 'data.node.base_classes' must be a list")
    if not problems:
        built[node_id] = body
    return problems


def _edge_problems(at: str, edge: Any, built: dict[str, dict[str, Any]]) -> list[str]:
    if not isinstance(edge, dict):
        return [f"{at} must be an object, not {_type_name(edge)}"]
    problems = []
    for end in ("source", "target"):
        if not isinstance(edge.get(end), str) or edge[end] not in built:
            problems.append(f"{at}: {end} {edge.get(end)!r} is not a node of this flow")
    if problems:
        return problems
    data = edge.get("data")
    if data is None:
        return []  # a legacy edge: Langflow reads its string handles
    source_handle = data.get("sourceHandle") if isinstance(data, dict) else None
    target_handle = data.get("targetHandle") if isinstance(data, dict) else None
    if not isinstance(source_handle, dict) or not isinstance(source_handle.get("dataType"), str) \
            or not isinstance(source_handle.get("id"), str):
        problems.append(f"{at}: 'data.sourceHandle' must be an object with 'dataType' and 'id'")
    if not isinstance(target_handle, dict) or not isinstance(target_handle.get("id"), str) or not (
            isinstance(target_handle.get("fieldName"), str) or isinstance(target_handle.get("name"), str)):
        problems.append(f"{at}: 'data.targetHandle' must be an object with 'fieldName' and 'id'")
    if problems:
        return problems
    source, target = built[edge["source"]], built[edge["target"]]
    output_names = [o.get("name") for o in source.get("outputs") or [] if isinstance(o, dict)]
    if source_handle.get("name") is not None and output_names and source_handle["name"] not in output_names \
            and not source_handle.get("baseClasses"):
        problems.append(f"{at}: the source {edge['source']} has no output {source_handle['name']!r} "
                        f"(it has {', '.join(map(str, output_names))})")
    field = target_handle.get("fieldName")
    template = target.get("template") or {}
    if field is not None and template and field not in template and not target.get("flow"):
        problems.append(f"{at}: the target {edge['target']} has no input {field!r}")
    return problems


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _read_flow(path: Path) -> tuple[str, Any]:
    """The text and the document, as Langflow reads them (UTF-8, strict JSON); ValueError says what is wrong."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ValueError("starts with a byte-order mark, which Langflow's JSON reader refuses; save it as UTF-8 without BOM")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"is not UTF-8 (invalid byte at offset {error.start}); save it as UTF-8") from None
    try:
        return text, json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except (ValueError, RecursionError) as error:
        raise ValueError(f"not valid JSON: {error}") from None


def _file_name_problem(name: str) -> Optional[str]:
    """File names become ConfigMap keys."""
    if len(name) > 253:
        return f"file name is {len(name)} characters long; a ConfigMap key holds at most 253, so shorten it"
    if not CONFIG_MAP_KEY.match(name) or name.startswith(".."):
        return "file name may hold only letters, digits, '-', '_' and '.', and must not start with '..'; rename it"
    return None


def load_flow_folder(project_dir: Path, folder: str) -> list[FlowFile]:
    """Read and validate every flow file in `folder` (relative to the project); raise FlowError naming each bad file."""
    shown = folder.rstrip("/")
    root = project_dir.resolve()
    try:
        path = (project_dir / folder).resolve()
        path.is_dir()
    except OSError as error:  # a name the file system refuses (too long, ...)
        raise FlowError([f"{config_key('flows.folder')}: {folder[:40]!r}... cannot be opened ({error.strerror}); "
                         "give the folder of the flows in the project, e.g. flows"]) from None
    if not path.is_relative_to(root):
        raise FlowError([f"{config_key('flows.folder')}: {folder!r} leads outside the project (to {path}); what "
                         "deploys must be what is in git, so keep the flows inside the project"])
    if not path.is_dir():
        raise FlowError([f"{config_key('flows.folder')}: {folder!r} is not a folder; create it or set flows.source: none"])
    # As Langflow selects them: regular files whose suffix is `.json`.
    files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    if not files:
        raise FlowError([f"{config_key('flows.folder')}: no *.json flow files in {folder!r}; add one or set flows.source: none"])
    problems: list[str] = []
    flows: list[FlowFile] = []
    for file in files:
        where = f"{shown}/{file.name}"
        problem = _file_name_problem(file.name)
        if problem is None and not file.resolve().is_relative_to(root):
            problem = "is a link to a file outside the project; what deploys must be what is in git, so copy it in"
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        try:
            text, document = _read_flow(file)
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        found = flow_problems(document)
        if not isinstance(document, dict):  # flow_problems said so; nothing more can be read from it
            problems += [f"{where}: {p}" for p in found]
            continue
        flow_id = canonical_uuid(document.get("id"))
        stem_id = file.stem if canonical_uuid(file.stem) == file.stem else None
        if stem_id and flow_id and stem_id != flow_id:
            found.append(f"the file name gives id {stem_id}, which Langflow uses instead of the file's 'id' "
                         f"({document['id']}); rename the file or make them agree")
        flow_id = stem_id or flow_id
        if not found and flow_id is None and document.get("endpoint_name") is None:
            found.append("has neither 'id' nor 'endpoint_name', so Langflow adds it again on every start and the "
                         "second start fails (flow names are unique); add an 'endpoint_name' or an 'id'")
        problems += [f"{where}: {p}" for p in found]
        if not found:
            flows.append(FlowFile(file.name, text, flow_id, document["name"], document.get("endpoint_name")))
    flows, smoke_problems = _with_smoke_tests(path, shown, flows, {f.name for f in files})
    problems += smoke_problems
    problems += _clashes(flows, shown)
    size = sum(len(f.text.encode()) for f in flows)
    if size > MAX_PACKED_BYTES:
        problems.append(
            f"{config_key('flows.folder')}: the flows in {folder!r} total {size // 1024} KiB, more than a ConfigMap "
            f"holds ({MAX_PACKED_BYTES // 1024} KiB); put them on a volume and use flows.source: claim"
        )
    if problems:
        raise FlowError(problems)
    return flows


def _with_smoke_tests(folder: Path, shown: str, flows: list[FlowFile], flow_files: set[str]) -> tuple[list[FlowFile], list[str]]:
    """Attach each `<name>.smoke.yaml` to `<name>.json`; problems name the smoke file."""
    import yaml

    problems: list[str] = []
    by_file = {f.file_name: f for f in flows}
    for path in sorted(folder.glob(f"*{SMOKE_SUFFIX}")):
        where = f"{shown}/{path.name}"
        flow_file = path.name.removesuffix(SMOKE_SUFFIX) + ".json"
        if flow_file not in flow_files:
            problems.append(f"{where}: there is no {flow_file} beside it; rename it after the flow it tests")
            continue
        try:
            cases = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            problems.append(f"{where}: not valid YAML: {str(error).splitlines()[0]}")
            continue
        tests, found = _smoke_tests(cases)
        problems += [f"{where}: {p}" for p in found]
        if flow_file in by_file and not found:
            by_file[flow_file] = replace(by_file[flow_file], smoke_tests=tests)
    return [by_file[f.file_name] for f in flows], problems


def _smoke_tests(cases: Any) -> tuple[tuple[SmokeTest, ...], list[str]]:
    if not isinstance(cases, list) or not cases:
        return (), ["must be a list of cases, each with 'input' and 'expect' (and an optional 'name')"]
    tests, problems = [], []
    for index, case in enumerate(cases):
        if not isinstance(case, dict):
            problems.append(f"[{index}] must be a mapping with 'input' and 'expect'")
            continue
        unknown = sorted(set(case) - {"name", "input", "expect"})
        if unknown:
            problems.append(f"[{index}]: unknown key {unknown[0]!r}; use name, input and expect")
        if not isinstance(case.get("input"), str):
            problems.append(f"[{index}].input must be a string (the chat input)")
        if not isinstance(case.get("expect"), str) or not case["expect"]:
            problems.append(f"[{index}].expect must be a non-empty string (a part of the expected output)")
        if not problems:
            tests.append(SmokeTest(str(case.get("name") or f"case {index + 1}"), case["input"], case["expect"]))
    return tuple(tests), problems


def _clashes(flows: list[FlowFile], shown: str) -> list[str]:
    """Langflow keeps one flow per name, endpoint name and id: two files must not claim the same one."""
    problems = []
    for label in ("name", "endpoint_name", "id"):
        owners: dict[str, str] = {}
        for flow in flows:
            value = flow.flow_id if label == "id" else getattr(flow, label)
            if value is None:
                continue
            if value in owners:
                problems.append(
                    f"{shown}/{flow.file_name}: {label} {value!r} is also used by {owners[value]}; Langflow keeps one "
                    f"flow per {label} ({'its start-up fails' if label == 'name' else 'one file would overwrite the other'}), "
                    "so give each flow its own"
                )
            owners.setdefault(value, flow.file_name)
    return problems


def synced_flow_problems(flows: list[FlowFile], folder: str, default: Optional[str]) -> list[str]:
    """With flows.update `sync`: Langflow's API gives a flow it creates an id of its own (1.6), so a synced flow
    is found again, and run, by its endpoint name."""
    shown = folder.rstrip("/")
    fix = f"or set {config_key('flows.update')}: restart"
    problems = [f"{shown}/{f.file_name}: {config_key('flows.update')} is sync, which finds a flow again by its "
                f"'endpoint_name' (Langflow's API cannot keep a file's id); add one, {fix}"
                for f in flows if not f.endpoint_name]
    if default is not None and canonical_uuid(default) is not None:
        problems.append(f"{config_key('flows.default_flow')}: {default!r} is an id, which a synced flow does not "
                        f"keep; name the flow by its endpoint_name, {fix}")
    return problems


def flows_commit(project_dir: Path, folder: str) -> Optional[str]:
    """The git commit that last changed the flows folder (`-dirty` with uncommitted changes there); None outside
    git. Beside the content hash, it tells an operator where the live flows come from."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True, check=True).stdout.strip()
    try:
        commit = git("log", "-1", "--format=%H", "--", folder)
        dirty = git("status", "--porcelain", "--", folder)
    except (OSError, subprocess.CalledProcessError):
        return None
    return (commit or "uncommitted") + ("-dirty" if dirty and commit else "")


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
        if wanted == flow.endpoint_name or (flow.flow_id and canonical_uuid(wanted) == flow.flow_id):
            return wanted
    known = sorted({v for f in flows for v in (f.flow_id, f.endpoint_name) if v})
    raise FlowError([f"{config_key('flows.default_flow')}: {wanted!r} is not the id or endpoint name of a flow; "
                     f"known: {', '.join(known) or 'none'}"])
