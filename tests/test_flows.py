"""Flow files are validated before anything is applied; a bad file names itself and the reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from settings.flows import (
    MAX_PACKED_BYTES, FlowError, default_flow, flow_problems, flows_digest, load_flow_folder,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = json.loads((ROOT / "flows" / "echo.json").read_text())


def write(folder: Path, name: str, content) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))


def load_errors(folder: Path) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_flow_folder(folder, "flows")
    return caught.value.problems


def test_shipped_example_is_a_valid_flow():
    assert flow_problems(EXAMPLE) == []
    assert EXAMPLE["endpoint_name"] == "echo"


def broken(mutate) -> dict:
    flow = copy.deepcopy(EXAMPLE)
    mutate(flow)
    return flow


@pytest.mark.parametrize(
    ("flow", "fragment"),
    [
        ([], "top level must be a JSON object"),
        (broken(lambda f: f.pop("name")), "'name' must be a non-empty string"),
        (broken(lambda f: f.update(id="not-a-uuid")), "'id' must be a UUID"),
        (broken(lambda f: f.update(endpoint_name="has space")), "'endpoint_name' may hold only"),
        (broken(lambda f: f.pop("data")), "'data' must be an object"),
        (broken(lambda f: f["data"].pop("nodes")), "'data.nodes' must be a list"),
        (broken(lambda f: f["data"].update(edges={})), "'data.edges' must be a list"),
        (broken(lambda f: f["data"]["nodes"][1].pop("id")), "data.nodes[1] has no 'id'"),
        (broken(lambda f: f["data"]["nodes"][1].update(id="ChatInput-echo1")), "node id 'ChatInput-echo1' is used twice"),
        (broken(lambda f: f["data"]["edges"][0].update(target="Ghost-1")), "target 'Ghost-1' is not a node of this flow"),
        (broken(lambda f: f["data"]["edges"][0].update(source=None)), "source None is not a node of this flow"),
        (broken(lambda f: f["data"]["edges"].append("edge")), "data.edges[1] must be an object"),
    ],
)
def test_flow_shape_rules(flow, fragment):
    assert any(fragment in p for p in flow_problems(flow)), flow_problems(flow)


def test_bad_files_are_named_with_the_reason(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "good.json", EXAMPLE)
    write(folder, "truncated.json", '{"name": "x", "data": {')
    write(folder, "dangling.json", broken(lambda f: (f.update(id=None, endpoint_name="dangling"),
                                                     f["data"]["edges"][0].update(target="Nope"))))
    write(folder, "notes.txt", "ignored: only *.json files are flows")
    errors = load_errors(folder)
    assert len(errors) == 2, errors
    assert errors[0].startswith("flows/dangling.json: data.edges[0]: target 'Nope'")
    assert errors[1].startswith("flows/truncated.json: not valid JSON:") and "line 1" in errors[1]


def test_two_files_cannot_claim_the_same_flow(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "a.json", EXAMPLE)
    write(folder, "b.json", EXAMPLE)
    errors = load_errors(folder)
    assert any("flows/b.json: id" in e and "also used by a.json" in e for e in errors), errors
    assert any("flows/b.json: endpoint_name 'echo'" in e for e in errors), errors


def test_file_names_must_be_configmap_keys(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "my flow.json", EXAMPLE)
    assert load_errors(folder) == ["flows/my flow.json: file name may hold only letters, digits, '-', '_' and '.'"]


def test_missing_or_empty_folder_names_the_key(tmp_path: Path):
    assert load_errors(tmp_path / "absent")[0].startswith("langflow:flows.folder: 'flows' is not a folder")
    (tmp_path / "empty").mkdir()
    assert load_errors(tmp_path / "empty")[0].startswith("langflow:flows.folder: no *.json flow files")


def test_flows_too_large_for_a_configmap_point_to_a_claim(tmp_path: Path):
    folder = tmp_path / "flows"
    big = broken(lambda f: f.update(description="x" * (MAX_PACKED_BYTES + 1)))
    write(folder, "big.json", big)
    errors = load_errors(folder)
    assert errors[0].startswith("langflow:flows.folder:") and "flows.source: claim" in errors[0]


def test_digest_changes_exactly_when_a_flow_changes(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "echo.json", EXAMPLE)
    first = flows_digest(load_flow_folder(folder, "flows"))
    assert flows_digest(load_flow_folder(folder, "flows")) == first
    write(folder, "echo.json", broken(lambda f: f.update(description="changed")))
    assert flows_digest(load_flow_folder(folder, "flows")) != first


def test_default_flow(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "echo.json", EXAMPLE)
    flows = load_flow_folder(folder, "flows")
    assert default_flow(flows, None) == "echo"
    assert default_flow(flows, EXAMPLE["id"]) == EXAMPLE["id"]
    with pytest.raises(FlowError) as caught:
        default_flow(flows, "missing")
    assert caught.value.problems[0].startswith("langflow:flows.default_flow: 'missing' is not the id")
    write(folder, "other.json", broken(lambda f: f.update(id=None, endpoint_name="other")))
    assert default_flow(load_flow_folder(folder, "flows"), None) is None
