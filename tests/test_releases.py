"""Release selection and records against recorded histories, and the git snapshots behind rollbacks.

`tests/fixtures/history/dev-file-backend.json` is `pulumi stack history --json` of a dev stack on a
self-managed backend (versions all 0), recorded by `python tests/fixtures/history/record.py`: two
releases, an atomic release whose rollout failed and its automatic rollback, a rollback, a refresh,
a destroy and a release after it. `cloud.json` is the same history as Pulumi Cloud lists it, with
version numbers (they count every update, refreshes and destroys included).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from pulumi.automation import UpdateSummary

from releases import history
from releases.history import ReleaseError, ReleaseRecord
from releases.snapshot import SNAPSHOT_REFS, Repository, read_tree, write_tree

FIXTURES = Path(__file__).parent / "fixtures" / "history"


def summaries(name: str) -> list[UpdateSummary]:
    """A recorded `pulumi stack history --json`, read the way the Automation API's Stack.history() reads it."""
    entries = json.loads((FIXTURES / name).read_text())
    return [UpdateSummary(
        kind=e["kind"], start_time=datetime.strptime(e["startTime"], "%Y-%m-%dT%H:%M:%S.%fZ"), message=e["message"],
        environment=e["environment"], config=e["config"], result=e["result"],
        end_time=datetime.strptime(e["endTime"], "%Y-%m-%dT%H:%M:%S.%fZ") if "endTime" in e else None,
        version=e.get("version"), resource_changes=e.get("resourceChanges")) for e in entries]


@pytest.fixture(params=["dev-file-backend.json", "cloud.json"])
def recorded(request) -> list[history.Update]:
    return history.updates(summaries(request.param))


def by_summary(updates: list[history.Update]) -> dict[str, history.Update]:
    return {u.summary: u for u in updates}


# --- what the history says ---------------------------------------------------------------------

def test_updates_are_numbered_oldest_first_on_either_backend(recorded):
    assert [u.number for u in recorded] == list(range(1, len(recorded) + 1))
    assert [u.kind for u in recorded] == ["update"] * 5 + ["refresh", "destroy", "update"]
    assert [u.result for u in recorded if u.kind == "update"] == ["succeeded", "succeeded", "failed", "succeeded",
                                                                  "succeeded", "succeeded"]


def test_release_records_are_read_back_from_the_message(recorded):
    v1 = recorded[0]
    assert v1.summary == "v1"
    assert v1.record.image == "langflowai/langflow:1.6.4"
    assert len(v1.record.flows) == 64 and v1.record.snapshot == v1.commit
    failed = recorded[2]
    assert failed.record.image.startswith("never-ready.localcluster.invalid/langflowai/langflow:")
    assert failed.resource_steps > 0


def test_message_round_trip_and_messages_without_a_record():
    record = ReleaseRecord("registry.internal/langflow:1.6.4@sha256:" + "a" * 64, "b" * 64, "c" * 40)
    message = history.compose_message("bump langflow\n\nwith a body", record)
    assert history.parse_message(message) == ("bump langflow\n\nwith a body", record)
    assert history.parse_message("a plain message") == ("a plain message", None)
    assert history.parse_message("") == ("", None)
    # Trailer-like words in the text are no record.
    assert history.parse_message("fix\n\nRelease-Image: x")[1] is None


def test_the_live_release_is_the_newest_that_succeeded_and_none_after_a_destroy(recorded):
    assert history.live_release(recorded) == recorded[-1]
    assert history.live_release(recorded[:7]) is None  # destroyed
    assert history.live_release(recorded[:3]) == recorded[1]  # the failed release is not live
    assert history.live_release([]) is None


def test_rollback_goes_to_the_previous_release_that_differs(recorded):
    live, target = history.rollback_target(recorded[:5])
    assert (live.number, target.number) == (5, 4)
    # Release 4 went back to release 2's inputs: from there the previous that differs is release 1.
    live, target = history.rollback_target(recorded[:4])
    assert (live.number, target.number) == (4, 1)


def test_rollback_to_a_named_release(recorded):
    live, target = history.rollback_target(recorded, 2)
    assert (live.number, target.number) == (8, 2)


def test_a_rollback_planned_before_another_update_ended_is_refused(recorded):
    # Planned when release 4 was the newest; release 5 (the rollback of the failed release) ended meanwhile.
    planned, now = recorded[:4], recorded[:5]
    history.require_unchanged(planned, planned, "rollback")
    with pytest.raises(ReleaseError) as error:
        history.require_unchanged(planned, now, "rollback")
    assert "another update ran while this rollback was prepared: 5 (update, succeeded)" in str(error.value)
    assert "Nothing was changed" in str(error.value)
    with pytest.raises(ReleaseError, match="1 \\(update, succeeded\\)"):
        history.require_unchanged([], recorded[:1], "rollback")


@pytest.mark.parametrize(("upto", "to", "fragments"), [
    (0, None, ["no release of this stack is live"]),
    (7, None, ["no release of this stack is live", "destroyed"]),
    (1, None, ["release 1 is live", "nothing to roll back to"]),
    (8, 99, ["there is no release 99", "releases are 1 to 8"]),
    (8, 0, ["there is no release 0"]),
    (8, 3, ["release 3 failed", "roll back to a release that succeeded"]),
    (8, 6, ["6 is a refresh, not a release"]),
    (8, 8, ["release 8 is already live"]),
])
def test_bad_rollback_targets_are_refused_with_the_reason(recorded, upto, to, fragments):
    with pytest.raises(ReleaseError) as error:
        history.rollback_target(recorded[:upto], to)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_the_table_shows_image_flows_commit_result_and_the_live_release(recorded):
    text = history.table(recorded)
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["#", "started", "(UTC)", "result"]
    rows = lines[1:]
    assert len(rows) == 6  # releases only: no refresh, no destroy
    assert rows[-1].endswith("<- live") and sum("<- live" in r for r in rows) == 1
    assert "failed" in rows[2] and "never-ready.localcluster.invalid/" in rows[2]
    assert recorded[0].record.flows[:12] in rows[0] and recorded[0].commit[:10] in rows[0]
    assert history.table([]) == "no releases yet: `make up` makes the first"


def test_an_update_made_without_releases_shows_its_tag_from_config():
    entry = summaries("dev-file-backend.json")[-1]
    entry.message = "pulumi up by hand"
    (update,) = history.updates([entry])
    assert update.record is None
    assert "tag 1.6.4" in history.table([update])


# --- git snapshots ------------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(repo), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    """A project in a subfolder of a git repository, as it may be in a monorepo."""
    root = tmp_path / "repo"
    project = root / "deploy" / "langflow"
    (project / "flows").mkdir(parents=True)
    (project / "Pulumi.dev.yaml").write_text("config: {langflow:replicas: 1}\n")
    (project / "flows" / "a.json").write_text("{}")
    (project / "__main__.py").write_text("print()\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return project


def test_a_clean_release_is_its_head_commit(project):
    repository = Repository.find(project)
    assert repository.snapshot(["Pulumi.dev.yaml", "flows"], "dev") == git(project, "rev-parse", "HEAD")
    assert git(project, "for-each-ref", SNAPSHOT_REFS) == ""


def test_uncommitted_files_are_kept_in_a_snapshot_commit_without_touching_the_work_tree(project):
    repository = Repository.find(project)
    (project / "Pulumi.dev.yaml").write_text("config: {langflow:replicas: 2}\n")
    (project / "flows" / "b.json").write_text('{"new": true}')
    (project / "flows" / "a.json").unlink()
    (project / "__main__.py").write_text("print('not part of a release')\n")
    status = git(project, "status", "--porcelain")
    assert repository.uncommitted(["Pulumi.dev.yaml", "flows"]) == [
        "deploy/langflow/Pulumi.dev.yaml", "deploy/langflow/flows/a.json", "deploy/langflow/flows/b.json"]
    commit = repository.snapshot(["Pulumi.dev.yaml", "flows"], "dev")
    assert git(project, "status", "--porcelain") == status  # index and work tree untouched
    assert git(project, "rev-parse", "HEAD") != commit
    assert git(project, "for-each-ref", "--format=%(objectname)", SNAPSHOT_REFS) == commit
    assert repository.files_at(commit, "flows") == {"flows/b.json": b'{"new": true}'}
    assert repository.files_at(commit, "Pulumi.dev.yaml") == {"Pulumi.dev.yaml": b"config: {langflow:replicas: 2}\n"}
    # Everything else is as at HEAD, and the same files give the same commit.
    assert repository.files_at(commit, "__main__.py") == {"__main__.py": b"print()\n"}
    assert repository.snapshot(["Pulumi.dev.yaml", "flows"], "dev") == commit


def test_files_are_restored_exactly(project):
    repository = Repository.find(project)
    head = git(project, "rev-parse", "HEAD")
    (project / "flows" / "stray.json").write_text("{}")
    (project / "flows" / "a.json").write_text('{"changed": 1}')
    write_tree(project, "flows", repository.files_at(head, "flows"))
    assert read_tree(project, "flows") == {"flows/a.json": b"{}"}
    assert repository.has_commit(head) and not repository.has_commit("0" * 40)


def test_outside_git_there_is_no_repository(tmp_path):
    assert Repository.find(tmp_path) is None


# --- rollbacks across a schema change -----------------------------------------------------------

def release(number: int, tag: str, result: str = "succeeded", hour: int = 0) -> history.Update:
    return history.Update(number=number, kind="update", started=datetime(2026, 12, 1, hour), result=result,
                          summary=f"v{number}", config={"langflow:image": (json.dumps({"tag": tag}), False)},
                          record=ReleaseRecord(f"langflowai/langflow:{tag}", "none"))


def test_only_a_rollback_to_an_older_schema_restores_the_database():
    same = [release(1, "1.6.4"), release(2, "1.6.5")]  # 1.6.5 added no migration
    assert history.schema_rollback(same, same[1], same[0]) is None
    upgraded = [release(1, "1.6.4", hour=1), release(2, "1.13.0", hour=2), release(3, "1.13.0", hour=3)]
    change = history.schema_rollback(upgraded, upgraded[2], upgraded[0])
    # The snapshot before the first release of 1.13.0: what came after it is what a restore loses.
    assert change == history.SchemaRollback("1.13.0", "1.6.4", "before-1.13.0", datetime(2026, 12, 1, 2))
    # Forward is a migration Langflow does itself; the same version never needs a restore.
    assert history.schema_rollback(upgraded, upgraded[0], upgraded[2]) is None
    assert history.schema_rollback(upgraded, upgraded[2], upgraded[1]) is None


def test_a_version_of_unknown_schema_counts_as_a_change():
    releases = [release(1, "1.6.4"), release(2, "1.7.0")]
    assert history.schema_rollback(releases, releases[1], releases[0]).snapshot_label == "before-1.7.0"


def test_the_table_shows_the_schema_each_release_runs():
    shown = history.table([release(1, "1.6.4"), release(2, "1.13.0"), release(3, "1.7.0")]).splitlines()
    assert "d37bc4322900" in shown[1] and "e5a7c9b1d3f2" in shown[2] and " ? " in shown[3]
    assert "schema" in shown[0]


def test_the_schema_is_recorded_with_the_release():
    record = ReleaseRecord("langflowai/langflow:1.13.0", "none", None, "e5a7c9b1d3f2")
    assert history.parse_message(history.compose_message("v2", record)) == ("v2", record)


# --- one release command at a time rewrites the work tree ----------------------------------------

def test_a_command_that_rewrites_the_work_tree_excludes_every_other(tmp_path):
    from releases.worktree import work_tree_lock

    with work_tree_lock(tmp_path, "make rollback", exclusive=True):
        for exclusive in (True, False):
            with pytest.raises(ReleaseError) as error:
                with work_tree_lock(tmp_path, "make up", exclusive=exclusive):
                    pass
            assert f"another release command runs in this project (`make rollback`, pid {os.getpid()})" in \
                str(error.value) and "Nothing was changed" in str(error.value)
    # Commands that only read the work tree share it; one that rewrites it is refused while one reads.
    with work_tree_lock(tmp_path, "make up", exclusive=False), work_tree_lock(tmp_path, "make up", exclusive=False):
        with pytest.raises(ReleaseError, match=r"\(a make up, restore or destroy\)"):
            with work_tree_lock(tmp_path, "make rollback", exclusive=True):
                pass
    with work_tree_lock(tmp_path, "make rollback", exclusive=True):
        pass  # released when each command ended


def test_destroy_says_what_it_kept_and_why_the_network_policies_stay():
    from releases.kept import kept_summary

    def resource(kind: str, name: str, custom: bool = True) -> dict:
        return {"urn": f"urn:pulumi:dev::langflow::{kind}::{name}", "type": kind, "custom": custom}

    deployment = {"resources": [
        resource("pulumi:pulumi:Stack", "langflow-dev", custom=False),
        resource("pulumi:providers:kubernetes", "default"),
        resource("kubernetes:core/v1:PersistentVolumeClaim", "langflow-data"),
        resource("kubernetes:core/v1:Secret", "langflow-credentials"),
        resource("kubernetes:core/v1:Namespace", "langflow"),
        resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", "langflow-default-deny"),
        resource("kubernetes:networking.k8s.io/v1:NetworkPolicy", "langflow-database"),
    ]}
    assert kept_summary(deployment) == [
        "kept, data: langflow-data",
        "kept, what opens the data: langflow-credentials",
        "kept, the namespace: langflow",
        "kept, NetworkPolicies, so the namespace that still holds data stays locked down: langflow-database, "
        "langflow-default-deny",
    ]
    assert kept_summary({}) == []
