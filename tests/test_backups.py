"""Backups: the tool on real SQLite files, the pods and schedules the program renders, config and wiring.

What only a real Langflow and a real PostgreSQL show (a migration undone by a restore) is in
tests/langflow/test_backups_real.py; the Jobs on the real engine in tests/integration.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from components.backups import langflow_backup as tool
from components.backups import spec
from settings.backups import backup_engine
from settings.loader import parse_config
from settings.validation import warnings
from tests.program import run_program, stack_values
from tests.test_config import assert_refused

JOB, CRON_JOB, PVC = "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob", "kubernetes:core/v1:PersistentVolumeClaim"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def langflow_database(path: Path, revision: str, rows: int) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("create table if not exists alembic_version (version_num text)")
        db.execute("delete from alembic_version")
        db.execute("insert into alembic_version values (?)", (revision,))
        db.execute("create table if not exists flow (name text)")
        db.executemany("insert into flow values (?)", [(f"flow {i}",) for i in range(rows)])


def flows_in(path: Path) -> int:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("select count(*) from flow").fetchone()[0]


def run_tool(*args: str, env: dict[str, str] | None = None, monkeypatch=None) -> int:
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return tool.main(list(args))


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setattr(tool, "known_revisions", lambda: {"old-rev", "new-rev"})
    for name in ("CONFIRM", "RESTORE_FROM", "BACKUP_KIND", "BACKUP_LABEL"):
        monkeypatch.delenv(name, raising=False)
    database, backups = tmp_path / "data" / "langflow.db", tmp_path / "backups"
    database.parent.mkdir()
    return database, backups


def test_a_snapshot_is_a_consistent_copy_with_its_record_and_retention(folders, capsys):
    database, backups = folders
    langflow_database(database, "old-rev", 3)
    with closing(sqlite3.connect(database)) as open_by_langflow:  # a live database: the copy is still consistent
        open_by_langflow.execute("begin")
        for _ in range(4):
            assert tool.main(["snapshot", "--dir", str(backups), "--database", str(database), "--kind", "snapshot",
                              "--label", "before-1.13.0", "--keep", "2"]) == 0
    kept = tool.backups(backups)
    assert len(kept) == 2 and len(list(backups.glob("*.sqlite"))) == 2  # the oldest two were pruned
    newest = kept[0]
    assert newest["schema_revision"] == "old-rev" and newest["label"] == "before-1.13.0"
    assert newest["name"].startswith("snapshot-") and "-before-1.13.0" in newest["name"]
    assert len({m["name"] for m in kept}) == 2  # two in one second get names of their own
    assert flows_in(backups / newest["file"]) == 3
    assert "snapshot: snapshot-" in capsys.readouterr().out


def test_a_first_release_has_nothing_to_copy(folders, capsys):
    database, backups = folders
    assert tool.main(["snapshot", "--dir", str(backups), "--database", str(database), "--label", "before-1.6.4"]) == 0
    assert tool.backups(backups) == [] and "nothing to copy" in capsys.readouterr().out


def test_a_restore_needs_confirmation_and_keeps_what_it_overwrites(folders, monkeypatch, capsys):
    database, backups = folders
    langflow_database(database, "old-rev", 2)
    tool.main(["snapshot", "--dir", str(backups), "--database", str(database), "--label", "before-1.13.0"])
    langflow_database(database, "new-rev", 5)  # the new release migrated and wrote more
    before = database.read_bytes()

    assert tool.main(["restore", "--dir", str(backups), "--database", str(database)]) == 2
    assert "CONFIRM=restore" in capsys.readouterr().err and database.read_bytes() == before

    monkeypatch.setenv("CONFIRM", "restore")
    assert tool.main(["restore", "--dir", str(backups), "--database", str(database), "--kind", "snapshot"]) == 0
    assert flows_in(database) == 2 and tool.sqlite_revision(database) == "old-rev"
    # What the restore overwrote is a backup of its own: a mistaken restore is undone the same way.
    (pre,) = [m for m in tool.backups(backups) if m["kind"] == "pre-restore"]
    assert pre["schema_revision"] == "new-rev" and flows_in(backups / pre["file"]) == 7


def test_unknown_or_newer_backups_are_refused(folders, monkeypatch, capsys):
    database, backups = folders
    langflow_database(database, "newer-rev", 1)
    tool.main(["snapshot", "--dir", str(backups), "--database", str(database), "--kind", "scheduled",
               "--label", "scheduled"])
    monkeypatch.setenv("CONFIRM", "restore")
    assert tool.main(["restore", "--dir", str(backups), "--database", str(database), "--from", "nope"]) == 2
    assert "no backup named 'nope'" in capsys.readouterr().err
    assert tool.main(["restore", "--dir", str(backups), "--database", str(database), "--kind", "snapshot"]) == 2
    assert "no snapshot" in capsys.readouterr().err
    assert tool.main(["restore", "--dir", str(backups), "--database", str(database)]) == 2
    assert "newer than this image knows" in capsys.readouterr().err
    assert tool.sqlite_revision(database) == "newer-rev"


def test_postgres_bookkeeping_names_records_and_prunes(folders, capsys):
    _, backups = folders
    work = backups.parent / "work"
    work.mkdir()
    for _ in range(3):
        assert tool.main(["plan-dump", "--dir", str(backups), "--work-dir", str(work), "--kind", "scheduled",
                          "--label", "scheduled"]) == 0
        name = (work / "name").read_text()
        (backups / f"{name}.dump").write_bytes(b"PGDMP")  # what pg_dump writes
        (work / "revision").write_text("old-rev\n")
        assert tool.main(["finish", "--dir", str(backups), "--work-dir", str(work), "--engine", "postgresql",
                          "--kind", "scheduled", "--label", "scheduled", "--keep", "2"]) == 0
    kept = tool.backups(backups)
    assert [m["engine"] for m in kept] == ["postgresql"] * 2 and kept[0]["schema_revision"] == "old-rev"


# --- the pods the program renders ---------------------------------------------------------------

def subject(engine: str = "sqlite", version: str = "1.6.4") -> spec.BackupSubject:
    return spec.BackupSubject(app="langflow", namespace="lf", engine=engine,
                              langflow_image=f"langflowai/langflow:{version}", langflow_version=version,
                              data_claim="langflow-data", postgres_image="postgres:17.6",
                              database_url_secret={"name": "langflow-database-url", "key": "url"})


def config(**values):
    return parse_config({"backups": values}).backups


def test_the_snapshot_job_changes_with_the_langflow_version_only():
    job = spec.snapshot_job_manifest(config(), subject(), "tool")
    assert job == spec.snapshot_job_manifest(config(), subject(), "tool")
    newer = spec.snapshot_job_manifest(config(), subject(version="1.13.0"), "tool")
    assert newer["spec"] != job["spec"]  # a new spec: Pulumi replaces the Job, so it runs again
    env = {e["name"]: e["value"] for e in newer["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BACKUP_LABEL"] == "before-1.13.0" and env["BACKUP_KIND"] == "snapshot" and env["BACKUP_KEEP"] == "3"
    assert job["spec"]["backoffLimit"] == 0 and "name" not in job["metadata"]


def test_sqlite_pods_copy_the_data_volume_with_the_langflow_image():
    pod = spec.backup_pod(subject(), "tool", "backup", "snapshot", "before-1.6.4", 3)["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "langflowai/langflow:1.6.4"
    assert container["command"][:2] == ["python", "/backup-tool/langflow_backup.py"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"backups": "langflow-backups", "data": "langflow-data"}
    assert pod["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["readOnlyRootFilesystem"]


def test_postgres_pods_dump_between_two_steps_of_the_tool():
    pod = spec.backup_pod(subject("postgresql"), "tool", "backup", "scheduled", "scheduled", 7)["spec"]
    steps = pod["initContainers"] + pod["containers"]
    assert [(c["name"], c["image"]) for c in steps] == [
        ("plan", "langflowai/langflow:1.6.4"), ("backup", "postgres:17.6"), ("record", "langflowai/langflow:1.6.4")]
    assert "pg_dump --format=custom" in steps[1]["command"][2]
    url = [e for e in steps[1]["env"] if e["name"] == "DATABASE_URL"]
    assert url == [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "langflow-database-url", "key": "url"}}}]
    assert "data" not in {v["name"] for v in pod["volumes"]}
    restore = spec.backup_pod(subject("postgresql"), "tool", "restore", "", "", 3)["spec"]
    assert "--single-transaction" in restore["initContainers"][1]["command"][2]


def test_the_restore_template_is_suspended_and_unconfirmed():
    cron = spec.restore_cron_job_manifest(subject(), "tool")
    assert cron["metadata"]["name"] == "langflow-restore" and cron["spec"]["suspend"] is True
    env = {e["name"]: e["value"] for e in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONFIRM"] == "" and env["RESTORE_FROM"] == ""


def test_scheduled_backups_follow_the_config():
    cron = spec.backup_cron_job_manifest(config(schedule="30 2 * * 0", scheduled_kept=4), subject(), "tool")
    assert cron["spec"]["schedule"] == "30 2 * * 0" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    env = {e["name"]: e["value"] for e in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["BACKUP_KEEP"] == "4" and env["BACKUP_KIND"] == "scheduled"


# --- config --------------------------------------------------------------------------------------

def test_bad_schedules_name_the_key_and_the_fix():
    assert_refused({"backups": {"schedule": "every night"}}, "backups.schedule", "'0 3 * * *'")
    assert_refused({"backups": {"snapshots_kept": 0}}, "backups.snapshots_kept")
    assert parse_config({"backups": {"schedule": "@daily"}}).backups.schedule == "@daily"
    assert parse_config({"backups": {"schedule": None}}).backups.schedule is None


def test_backups_default_on_where_the_program_owns_the_database():
    def engine(database: dict, **backups) -> str | None:
        parsed = parse_config({"database": database, "backups": backups})
        return backup_engine(parsed.backups, parsed.database)

    assert engine({"type": "sqlite"}) == "sqlite"
    assert engine({"type": "postgresql", "postgresql": {"mode": "in-cluster"}}) == "postgresql"
    external = {"type": "postgresql", "postgresql": {"mode": "external", "external": {
        "host": "db.internal", "password_secret": {"name": "pg", "key": "password"}}}}
    assert engine(external) is None and engine(external, enabled=True) == "postgresql"
    assert engine({"type": "sqlite"}, enabled=False) is None


def test_backups_of_what_the_jobs_cannot_reach_are_refused():
    assert_refused({"database": {"type": "url", "url_secret": {"name": "db"}}, "backups": {"enabled": True}},
                   "backups.enabled", "database.type: postgresql with mode external")
    assert_refused({"database": {"type": "postgresql", "postgresql": {"mode": "cloudnative-pg"}},
                    "backups": {"enabled": True}}, "backups.enabled",
                   "set database.postgresql.cloudnative_pg.volume_snapshot_class")
    assert_refused({"backups": {"volume": {"size": "10Mi"}}}, "backups.volume.size")


# --- the program ----------------------------------------------------------------------------------

def test_a_release_waits_for_the_snapshot_and_the_backups_outlive_mistakes():
    run = run_program(stack_values("dev"), "dev")
    assert run.error is None, run.error
    job = run.named(JOB, "langflow-snapshot")
    assert job.inputs["metadata"]["annotations"]["langflow.org/image"] == "langflowai/langflow:1.6.4"
    deployment_deps = run.options[(DEPLOYMENT, "langflow")].depends_on
    assert any(getattr(d, "_name", None) == "langflow-snapshot" for d in deployment_deps)
    claim = run.options[(PVC, "langflow-backups-volume")]
    assert claim.protect is True and claim.retain_on_delete is True
    assert run.named(PVC, "langflow-backups-volume").inputs["metadata"]["name"] == "langflow-backups"
    assert {c.name for c in run.of_type(CRON_JOB)} == {"langflow-backups-scheduled", "langflow-backups-restore"}
    exported = run.outputs["backups"].value
    assert exported == {"engine": "sqlite", "namespace": "langflow-dev", "deployment": "langflow",
                        "volume": "langflow-backups", "restore_template": "langflow-restore", "schedule": "0 3 * * *"}


def test_without_backups_nothing_is_declared_and_the_preview_says_so():
    run = run_program({**stack_values("dev"), "backups": {"enabled": False}}, "dev")
    # The one Job left is the flow sync's.
    assert run.error is None and [j.name for j in run.of_type(JOB)] == ["langflow-flow-sync-job"]
    assert not run.of_type(CRON_JOB)
    assert run.outputs["backups"].value["engine"] is None
    assert any("make rollback` across one is refused" in w for w in warnings(parse_config({"backups": {"enabled": False}})))


def test_backup_pods_are_never_taken_for_langflow_pods():
    run = run_program(stack_values("dev"), "dev")
    selector = run.named(DEPLOYMENT, "langflow").inputs["spec"]["selector"]["matchLabels"]
    for job in [run.named(JOB, "langflow-snapshot")] + run.of_type(CRON_JOB):
        spec = job.inputs["spec"].get("jobTemplate", job.inputs)["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert not selector.items() <= labels.items(), job.name


CNPG = {"database": {"type": "postgresql", "postgresql": {"mode": "cloudnative-pg", "cloudnative_pg": {
    "volume_snapshot_class": "csi-snapshots"}}}}


def test_cloudnative_pg_backs_up_with_the_operator_s_own_objects():
    parsed = parse_config(CNPG)
    assert backup_engine(parsed.backups, parsed.database) == "cloudnative-pg"
    run = run_program({**stack_values("prod"), **CNPG}, "prod")
    assert run.error is None, run.error
    cluster = run.one("kubernetes:postgresql.cnpg.io/v1:Cluster").inputs
    assert cluster["spec"]["backup"] == {"volumeSnapshot": {"className": "csi-snapshots"}}
    backup = run.one("kubernetes:postgresql.cnpg.io/v1:Backup")
    assert backup.inputs["metadata"]["name"] == "langflow-before-1.6.4"
    assert backup.inputs["spec"] == {"cluster": {"name": "langflow-postgres"}, "method": "volumeSnapshot"}
    assert backup.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.phase}=completed"
    assert run.options[("kubernetes:postgresql.cnpg.io/v1:Backup", "langflow-snapshot")].retain_on_delete is True
    scheduled = run.one("kubernetes:postgresql.cnpg.io/v1:ScheduledBackup").inputs
    assert scheduled["spec"]["schedule"] == "0 0 3 * * *"  # the operator's cron counts seconds first
    deployment_deps = run.options[(DEPLOYMENT, "langflow")].depends_on
    assert any(getattr(d, "_name", None) == "langflow-snapshot" for d in deployment_deps)
    assert not run.of_type(JOB) or all("snapshot" not in j.name for j in run.of_type(JOB))
    assert not run.of_type(CRON_JOB) and run.outputs["backups"].value["engine"] == "cloudnative-pg"
    # Without a snapshot class there are none, and the preview says what that means.
    without = parse_config({"database": {"type": "postgresql", "postgresql": {"mode": "cloudnative-pg"}}})
    assert backup_engine(without.backups, without.database) is None
    assert any("volume_snapshot_class" in w for w in warnings(without))


def test_a_cloudnative_pg_rollback_across_a_schema_change_says_how_to_recover():
    from releases.database import require_backups
    from releases.history import ReleaseError

    with pytest.raises(ReleaseError, match="bootstrap.recovery"):
        require_backups({"engine": "cloudnative-pg", "namespace": "langflow"}, "the database must be restored")
    with pytest.raises(ReleaseError, match="takes no backups"):
        require_backups({"engine": None}, "the database must be restored")


def test_a_bad_snapshot_class_name_is_refused_naming_the_key():
    assert_refused({"database": {"type": "postgresql", "postgresql": {"mode": "cloudnative-pg", "cloudnative_pg": {
        "volume_snapshot_class": "Bad_Class"}}}}, "database.postgresql.cloudnative_pg.volume_snapshot_class",
        "VolumeSnapshotClass name")


def test_the_scripts_reach_the_shell_as_written_after_the_kubelets_expansion():
    """The kubelet expands a container's command before the shell sees it (`$$` becomes `$`): the restore
    script's SQL broke that way on the real node, while make verify, which did not expand, passed."""
    from components.backups import spec as backup_spec
    from verify.postgres import expand
    for script in (backup_spec.POSTGRES_DUMP, backup_spec.POSTGRES_RESTORE):
        assert expand(["/bin/sh", "-c", script], {"DATABASE_URL": "postgresql://x"}) == ["/bin/sh", "-c", script]
    assert expand(["a $$ b", "$(A)", "$(B)", "$$(A)"], {"A": "1"}) == ["a $ b", "1", "$(B)", "$(A)"]
