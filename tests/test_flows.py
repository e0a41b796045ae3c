"""Flow files are validated before anything is applied; a bad file names itself and the reason."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from settings.flows import (
    MAX_PACKED_BYTES, FlowError, default_flow, flow_problems, flows_digest, load_flow_folder,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = json.loads((ROOT / "flows" / "echo.json").read_text())
OTHER_ID = "0b7a6c1e-1111-4a2b-9c3d-4e5f60718293"


def write(folder: Path, name: str, content) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def load_errors(project: Path, folder: str = "flows") -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_flow_folder(project, folder)
    return caught.value.problems


def only_error(project: Path) -> str:
    errors = load_errors(project)
    assert len(errors) == 1, errors
    return errors[0]


def broken(mutate, flow=EXAMPLE) -> dict:
    flow = copy.deepcopy(flow)
    mutate(flow)
    return flow


def another(name="Other", endpoint="other", flow_id=OTHER_ID) -> dict:
    return broken(lambda f: f.update(name=name, endpoint_name=endpoint, id=flow_id))


def node(flow: dict, index: int) -> dict:
    return flow["data"]["nodes"][index]


def test_shipped_example_is_a_complete_export():
    assert flow_problems(EXAMPLE) == []
    assert EXAMPLE["endpoint_name"] == "echo"
    for item in EXAMPLE["data"]["nodes"]:
        template = item["data"]["node"]["template"]
        assert template["_type"] == "Component" and template["code"]["value"].strip()


@pytest.mark.parametrize(
    ("flow", "fragment"),
    [
        ([], "top level must be a JSON object"),
        ("flow", "top level must be a JSON object"),
        (broken(lambda f: f.pop("name")), "'name' must be a non-empty string"),
        (broken(lambda f: f.update(name="  ")), "'name' must be a non-empty string"),
        (broken(lambda f: f.update(id="not-a-uuid")), "'id' must be a UUID"),
        (broken(lambda f: f.update(id=12)), "'id' must be a UUID"),
        (broken(lambda f: f.update(endpoint_name="has space")), "'endpoint_name' may hold only"),
        (broken(lambda f: f.update(endpoint_name=["echo"])), "'endpoint_name' may hold only"),
        (broken(lambda f: f.update(description=["x"])), "'description' must be a string"),
        (broken(lambda f: f.update(is_component="no")), "'is_component' must be true or false"),
        (broken(lambda f: f.update(icon_bg_color="red")), "'icon_bg_color' must be a colour"),
        (broken(lambda f: f.update(tags="a,b")), "'tags' must be a list of strings"),
        (broken(lambda f: f.update(access_type="SECRET")), "'access_type' must be PRIVATE or PUBLIC"),
        (broken(lambda f: f.update(updated_at="yesterday")), "'updated_at' must be an ISO date"),
        (broken(lambda f: f.update(folder_id=OTHER_ID)), "'folder_id' ties the flow"),
        (broken(lambda f: f.pop("data")), "'data' must be an object"),
        (broken(lambda f: f.update(data=[])), "'data' must be an object"),
        (broken(lambda f: f["data"].pop("nodes")), "'data.nodes' must be a list"),
        (broken(lambda f: f["data"].update(edges={})), "'data.edges' must be a list"),
        (broken(lambda f: f["data"]["nodes"].append("node")), "data.nodes[2] must be an object"),
        (broken(lambda f: node(f, 1).pop("id")), "data.nodes[1] has no 'id'"),
        (broken(lambda f: node(f, 1).update(id="ChatInput-echo1")), "node id 'ChatInput-echo1' is used twice"),
        (broken(lambda f: node(f, 0).update(data=[])), "'data' must be an object"),
        (broken(lambda f: node(f, 0)["data"].pop("type")), "'data.type' is required"),
        (broken(lambda f: node(f, 0)["data"].pop("id")), "'data.id' is required"),
        (broken(lambda f: node(f, 0)["data"]["node"]["template"].pop("_type")), "'_type' is missing"),
        (broken(lambda f: node(f, 0)["data"]["node"].update(template="x")), "'_type' is missing"),
        (broken(lambda f: node(f, 0)["data"].update(node=None)), "'_type' is missing"),
        (broken(lambda f: node(f, 0)["data"]["node"]["template"].pop("code")), "the component's code) is missing"),
        (broken(lambda f: node(f, 0)["data"]["node"]["template"]["code"].update(value=None)), "code) is missing"),
        (broken(lambda f: node(f, 0)["data"]["node"].pop("outputs")), "'data.node.outputs' must list the outputs"),
        (broken(lambda f: node(f, 0)["data"]["node"].update(outputs=[{"name": "x"}])), "each with 'name' and 'types'"),
        (broken(lambda f: f["data"]["edges"][0].update(target="Ghost-1")), "target 'Ghost-1' is not a node of this flow"),
        (broken(lambda f: f["data"]["edges"][0].update(source=None)), "source None is not a node of this flow"),
        (broken(lambda f: f["data"]["edges"].append("edge")), "data.edges[1] must be an object"),
        (broken(lambda f: f["data"]["edges"][0].update(data={"sourceHandle": "x"})), "'data.sourceHandle' must be an object"),
        (broken(lambda f: f["data"]["edges"][0]["data"].pop("targetHandle")), "'data.targetHandle' must be an object"),
        (broken(lambda f: f["data"]["edges"][0]["data"]["sourceHandle"].update(name="nothing")), "has no output 'nothing'"),
        (broken(lambda f: f["data"]["edges"][0]["data"]["targetHandle"].update(fieldName="nothing")), "has no input 'nothing'"),
    ],
)
def test_flow_shape_rules(flow, fragment):
    found = flow_problems(flow)
    assert any(fragment in p for p in found), found


def test_the_previous_hand_written_example_is_refused():
    """Shape-valid, but Langflow answers 'Error while creating graph from payload: '_type''."""
    bare = broken(lambda f: [n["data"]["node"].update(template={"input_value": {"value": ""}}) for n in f["data"]["nodes"]])
    found = flow_problems(bare)
    assert len(found) == 2 and all("'_type' is missing" in p for p in found), found


def test_notes_need_no_template():
    note = {"id": "note-1", "type": "noteNode", "data": {"node": {"description": "a note"}}}
    assert flow_problems(broken(lambda f: f["data"]["nodes"].append(note))) == []


def test_bad_files_are_named_with_the_reason(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "good.json", EXAMPLE)
    write(folder, "truncated.json", '{"name": "x", "data": {')
    write(folder, "dangling.json", broken(lambda f: (f.update(id=None, endpoint_name="dangling", name="Dangling"),
                                                     f["data"]["edges"][0].update(target="Nope"))))
    write(folder, "notes.txt", "ignored: only *.json files are flows")
    errors = load_errors(tmp_path)
    assert len(errors) == 2, errors
    assert errors[0].startswith("flows/dangling.json: data.edges[0]: target 'Nope'")
    assert errors[1].startswith("flows/truncated.json: not valid JSON:") and "line 1" in errors[1]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe{}", "is not UTF-8"),
        ("{}".encode("utf-16"), "is not UTF-8"),
        (b"\xef\xbb\xbf" + json.dumps(EXAMPLE).encode(), "byte-order mark"),
        (json.dumps(EXAMPLE).replace('"description"', '"x": NaN, "description"', 1).encode(), "NaN is not JSON"),
        (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_unreadable_files_get_a_message_not_a_traceback(tmp_path: Path, content, fragment):
    write(tmp_path / "flows", "bad.json", content)
    message = only_error(tmp_path)
    assert message.startswith("flows/bad.json: ") and fragment in message, message


def test_two_files_cannot_claim_the_same_flow(tmp_path: Path):
    folder = tmp_path / "flows"
    write(folder, "a.json", EXAMPLE)
    write(folder, "b.json", EXAMPLE)
    errors = load_errors(tmp_path)
    assert any("flows/b.json: id" in e and "also used by a.json" in e for e in errors), errors
    assert any("flows/b.json: endpoint_name 'echo'" in e for e in errors), errors
    assert any("flows/b.json: name 'Echo'" in e and "start-up fails" in e for e in errors), errors


def test_two_flows_with_one_name_are_refused(tmp_path: Path):
    write(tmp_path / "flows", "a.json", EXAMPLE)
    write(tmp_path / "flows", "b.json", another(name=EXAMPLE["name"]))
    assert only_error(tmp_path).startswith("flows/b.json: name 'Echo' is also used by a.json")


def test_ids_that_differ_only_in_case_are_one_flow(tmp_path: Path):
    write(tmp_path / "flows", "a.json", EXAMPLE)
    write(tmp_path / "flows", "b.json", another(flow_id=EXAMPLE["id"].upper()))
    assert only_error(tmp_path).startswith(f"flows/b.json: id '{EXAMPLE['id']}' is also used by a.json")


def test_a_flow_without_id_and_endpoint_name_is_refused(tmp_path: Path):
    write(tmp_path / "flows", "a.json", broken(lambda f: (f.pop("id"), f.pop("endpoint_name"))))
    message = only_error(tmp_path)
    assert message.startswith("flows/a.json: has neither 'id' nor 'endpoint_name'") and "second start fails" in message


def test_a_uuid_file_name_is_the_flow_id(tmp_path: Path):
    write(tmp_path / "flows", f"{OTHER_ID}.json", EXAMPLE)
    message = only_error(tmp_path)
    assert message.startswith(f"flows/{OTHER_ID}.json: the file name gives id {OTHER_ID}"), message
    (tmp_path / "flows" / f"{OTHER_ID}.json").unlink()
    write(tmp_path / "flows", f"{OTHER_ID}.json", broken(lambda f: (f.pop("id"), f.pop("endpoint_name"))))
    (flow,) = load_flow_folder(tmp_path, "flows")
    assert flow.flow_id == OTHER_ID  # the file name gives it the id it needs
    write(tmp_path / "flows", "b.json", another(flow_id=OTHER_ID.upper()))
    assert only_error(tmp_path).startswith(f"flows/b.json: id '{OTHER_ID}' is also used by {OTHER_ID}.json")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("my flow.json", "may hold only"), ("..x.json", "must not start with '..'"), ("ü.json", "may hold only"),
     ("a" * 250 + ".json", "at most 253")],
)
def test_file_names_must_be_configmap_keys(tmp_path: Path, name, fragment):
    write(tmp_path / "flows", name, EXAMPLE)
    message = only_error(tmp_path)
    assert message.startswith(f"flows/{name}: ") and fragment in message, message


def test_flows_outside_the_project_are_refused(tmp_path: Path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    write(outside, "echo.json", EXAMPLE)
    project.mkdir()
    (project / "flows").symlink_to(outside)
    message = only_error(project)
    assert message.startswith("langflow:flows.folder: 'flows' leads outside the project"), message
    (project / "flows").unlink()
    (project / "flows").mkdir()
    (project / "flows" / "echo.json").symlink_to(outside / "echo.json")
    assert only_error(project).startswith("flows/echo.json: is a link to a file outside the project")
    # A link that stays inside the project is what git holds.
    (project / "flows" / "echo.json").unlink()
    write(project / "shared", "echo.json", EXAMPLE)
    (project / "flows" / "echo.json").symlink_to(os.path.relpath(project / "shared" / "echo.json", project / "flows"))
    assert [f.file_name for f in load_flow_folder(project, "flows")] == ["echo.json"]


def test_missing_or_empty_folder_names_the_key(tmp_path: Path):
    assert load_errors(tmp_path, "absent")[0].startswith("langflow:flows.folder: 'absent' is not a folder")
    (tmp_path / "empty").mkdir()
    assert load_errors(tmp_path, "empty")[0].startswith("langflow:flows.folder: no *.json flow files")


def test_flows_too_large_for_a_configmap_point_to_a_claim(tmp_path: Path):
    big = broken(lambda f: f.update(description="x" * (MAX_PACKED_BYTES + 1)))
    write(tmp_path / "flows", "big.json", big)
    errors = load_errors(tmp_path)
    assert errors[0].startswith("langflow:flows.folder:") and "flows.source: claim" in errors[0]


def test_digest_changes_exactly_when_a_flow_changes(tmp_path: Path):
    write(tmp_path / "flows", "echo.json", EXAMPLE)
    first = flows_digest(load_flow_folder(tmp_path, "flows"))
    assert flows_digest(load_flow_folder(tmp_path, "flows")) == first
    write(tmp_path / "flows", "echo.json", broken(lambda f: f.update(description="changed")))
    assert flows_digest(load_flow_folder(tmp_path, "flows")) != first


def test_default_flow(tmp_path: Path):
    write(tmp_path / "flows", "echo.json", EXAMPLE)
    flows = load_flow_folder(tmp_path, "flows")
    assert default_flow(flows, None) == "echo"
    assert default_flow(flows, EXAMPLE["id"]) == EXAMPLE["id"]
    assert default_flow(flows, EXAMPLE["id"].upper()) == EXAMPLE["id"].upper()
    with pytest.raises(FlowError) as caught:
        default_flow(flows, "missing")
    assert caught.value.problems[0].startswith("langflow:flows.default_flow: 'missing' is not the id")
    write(tmp_path / "flows", "other.json", another())
    assert default_flow(load_flow_folder(tmp_path, "flows"), None) is None


def test_smoke_tests_are_read_beside_their_flow(tmp_path: Path):
    write(tmp_path / "flows", "echo.json", EXAMPLE)
    write(tmp_path / "flows", "echo.smoke.yaml", "- input: hi\n  expect: hi\n- name: twice\n  input: a\n  expect: a\n")
    (flow,) = load_flow_folder(tmp_path, "flows")
    assert [(t.name, t.input, t.expect) for t in flow.smoke_tests] == [("case 1", "hi", "hi"), ("twice", "a", "a")]
    assert flow.run_name == "echo"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[unclosed", "not valid YAML"),
        ("input: hi", "must be a list of cases"),
        ("[]", "must be a list of cases"),
        ("- hi", "[0] must be a mapping"),
        ("- input: hi\n  expect: hi\n  output: hi", "[0]: unknown key 'output'"),
        ("- input: 3\n  expect: hi", "[0].input must be a string"),
        ("- input: hi\n  expect: ''", "[0].expect must be a non-empty string"),
    ],
)
def test_bad_smoke_tests_name_the_file(tmp_path: Path, content, fragment):
    write(tmp_path / "flows", "echo.json", EXAMPLE)
    write(tmp_path / "flows", "echo.smoke.yaml", content)
    message = only_error(tmp_path)
    assert message.startswith("flows/echo.smoke.yaml: ") and fragment in message, message


def test_a_smoke_test_without_its_flow_is_refused(tmp_path: Path):
    write(tmp_path / "flows", "echo.json", EXAMPLE)
    write(tmp_path / "flows", "ecko.smoke.yaml", "- input: a\n  expect: a\n")
    assert only_error(tmp_path).startswith("flows/ecko.smoke.yaml: there is no ecko.json beside it")


def test_the_shipped_example_has_a_smoke_test():
    (flow,) = load_flow_folder(ROOT, "flows")
    assert flow.smoke_tests and flow.smoke_tests[0].expect in flow.smoke_tests[0].input
